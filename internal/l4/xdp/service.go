package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/upstream"
)

// ServiceKey names a virtual service: its address, port and protocol
// (unix.IPPROTO_TCP or unix.IPPROTO_UDP).
type ServiceKey struct {
	Addr  netip.AddrPort
	Proto uint8
}

func (k ServiceKey) String() string {
	p := "tcp"
	if k.Proto == unix.IPPROTO_UDP {
		p = "udp"
	}
	return p + "/" + k.Addr.String()
}

// service is the control plane's record of one VIP.
type service struct {
	key   ServiceKey
	id    uint32
	mode  Mode
	reals map[string]*realSlot // every backend of the pool, by name
	// ready names the backends in the table now, sorted by name.
	ready []string
	// pending counts ready backends left out for want of a next hop.
	pending int
	// fingerprint is balance.MaglevFingerprint of the table in the
	// kernel now, 0 when the table is empty.
	fingerprint uint64
}

// realSlot is one backend of one service in the reals map. Its id indexes
// reals and real_stats; gen tells flows remembered for an earlier owner of
// the same id from the current one.
type realSlot struct {
	name string
	id   uint32
	gen  uint32
	addr netip.Addr
	mac  net.HardwareAddr // nil until resolved
	// warned is set once a failed resolution is logged, so that retries
	// do not repeat the warning every second.
	warned bool
}

// SetService makes the kernel forward key's packets in mode to the
// backends of snap: the ready ones (healthy, weight above 0, not
// draining) get slots in a new Maglev table, built by internal/balance
// from their names and effective weights and swapped in whole. Backends
// that left the table but not the pool keep their flows; backends that
// left the pool are forgotten, and so are their flows.
func (d *Dataplane) SetService(key ServiceKey, mode Mode, snap *upstream.Snapshot) error {
	if mode != DR && mode != Tunnel {
		return fmt.Errorf("xdp: service %s: unknown mode %d", key, mode)
	}
	if key.Proto != unix.IPPROTO_TCP && key.Proto != unix.IPPROTO_UDP {
		return fmt.Errorf("xdp: service %s: protocol %d is neither TCP nor UDP", key, key.Proto)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("xdp: dataplane closed")
	}
	s := d.services[key]
	if s == nil {
		id, ok := d.svcIDs.get()
		if !ok {
			return fmt.Errorf("xdp: service %s: all %d service slots are taken", key, MaxServices)
		}
		if err := zeroStats(d.objs.SvcStats, id); err != nil {
			d.svcIDs.put(id)
			return err
		}
		s = &service{key: key, id: id, reals: map[string]*realSlot{}}
		d.services[key] = s
	}
	s.mode = mode

	// Give every backend of the pool a slot, and resolve the next hop of
	// the ready ones; a ready backend whose next hop cannot be found
	// stays out of the table until a later update finds it.
	seen := map[string]bool{}
	var ready []*upstream.Backend
	readyNames := map[string]bool{}
	for _, b := range snap.Ready {
		readyNames[b.Name] = true
	}
	var errs []error
	s.pending = 0
	for _, b := range snap.All {
		seen[b.Name] = true
		addr, err := backendAddr(b.Addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("xdp: service %s: backend %s: %w", key, b.Name, err))
			continue
		}
		r := s.reals[b.Name]
		if r != nil && r.addr != addr {
			d.freeReal(r)
			r = nil
		}
		if r == nil {
			id, ok := d.realIDs.get()
			if !ok {
				errs = append(errs, fmt.Errorf("xdp: service %s: all %d real slots are taken", key, MaxReals))
				continue
			}
			d.gen++
			r = &realSlot{name: b.Name, id: id, gen: d.gen, addr: addr}
			s.reals[b.Name] = r
			if err := zeroStats(d.objs.RealStats, id); err != nil {
				errs = append(errs, err)
			}
		}
		if r.mac == nil && readyNames[b.Name] {
			mac, err := d.res.Resolve(addr, mode)
			if err != nil {
				if !r.warned {
					d.log.Warn("next hop of a real not found; it stays out of the table until it is", "service", key.String(), "backend", b.Name, "err", err)
					r.warned = true
				}
				s.pending++
				continue
			}
			r.mac = mac
			if err := d.objs.Reals.Put(r.id, r.kernel()); err != nil {
				errs = append(errs, fmt.Errorf("xdp: writing real %s: %w", b.Name, err))
				r.mac = nil
				continue
			}
		}
		if r.mac != nil && readyNames[b.Name] {
			ready = append(ready, b)
		}
	}

	// The new table goes in whole before the VIP is (re)published, and
	// replaces the old one in a single update of the outer map.
	if err := d.swapTable(s, ready); err != nil {
		return errors.Join(append(errs, err)...)
	}
	vk, meta := vipKey(key), lbVipMeta{Id: s.id, Mode: uint32(mode)}
	if err := d.objs.Vips.Put(&vk, &meta); err != nil {
		return errors.Join(append(errs, fmt.Errorf("xdp: publishing VIP %s: %w", key, err))...)
	}
	for name, r := range s.reals {
		if !seen[name] {
			d.freeReal(r)
			delete(s.reals, name)
		}
	}
	return errors.Join(errs...)
}

// swapTable builds the Maglev table of ready in a new inner map and puts
// it in the service's slot of the outer map. With nothing ready the slot
// is emptied, and the program drops the service's packets.
func (d *Dataplane) swapTable(s *service, ready []*upstream.Backend) error {
	if len(ready) == 0 {
		s.ready, s.fingerprint = nil, 0
		if err := d.objs.Rings.Delete(s.id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("xdp: emptying the table of %s: %w", s.key, err)
		}
		return nil
	}
	sorted, table := balance.MaglevTable(ready, RingSize)
	s.fingerprint = balance.MaglevFingerprint(sorted, table)
	if len(table) != RingSize {
		return fmt.Errorf("xdp: Maglev table of %d slots, the program has %d", len(table), RingSize)
	}
	ids := make([]uint32, len(sorted))
	s.ready = s.ready[:0]
	for i, b := range sorted {
		ids[i] = s.reals[b.Name].id
		s.ready = append(s.ready, b.Name)
	}
	keys := make([]uint32, RingSize)
	vals := make([]uint32, RingSize)
	for i, t := range table {
		keys[i] = uint32(i)
		vals[i] = ids[t]
	}
	inner, err := ebpf.NewMap(d.ringSpec)
	if err != nil {
		return fmt.Errorf("xdp: creating a table for %s: %w", s.key, err)
	}
	defer inner.Close() // the outer map holds its own reference
	if _, err := inner.BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("xdp: filling the table of %s: %w", s.key, err)
	}
	if err := d.objs.Rings.Put(s.id, inner); err != nil {
		return fmt.Errorf("xdp: swapping the table of %s: %w", s.key, err)
	}
	return nil
}

// Pending counts the ready backends of key that SetService left out of
// the table because their next hop's MAC was not found; a later
// SetService tries them again.
func (d *Dataplane) Pending(key ServiceKey) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.services[key]; s != nil {
		return s.pending
	}
	return 0
}

// RemoveService stops forwarding key's packets; they go to the stack
// again.
func (d *Dataplane) RemoveService(key ServiceKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.services[key]
	if s == nil {
		return nil
	}
	vk := vipKey(key)
	var errs []error
	if err := d.objs.Vips.Delete(&vk); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, err)
	}
	if err := d.objs.Rings.Delete(s.id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, err)
	}
	for _, r := range s.reals {
		d.freeReal(r)
	}
	delete(d.services, key)
	d.svcIDs.put(s.id)
	return errors.Join(errs...)
}

// Services lists the keys of the services in the kernel.
func (d *Dataplane) Services() []ServiceKey {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]ServiceKey, 0, len(d.services))
	for k := range d.services {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Table reads key's Maglev table back from the kernel: the name of the
// backend in each of its RingSize slots.
func (d *Dataplane) Table(key ServiceKey) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.services[key]
	if s == nil {
		return nil, fmt.Errorf("xdp: no service %s", key)
	}
	var innerID uint32
	if err := d.objs.Rings.Lookup(s.id, &innerID); err != nil {
		return nil, fmt.Errorf("xdp: the table of %s: %w", key, err)
	}
	inner, err := ebpf.NewMapFromID(ebpf.MapID(innerID))
	if err != nil {
		return nil, fmt.Errorf("xdp: opening the table of %s: %w", key, err)
	}
	defer inner.Close()
	names := map[uint32]string{}
	for _, r := range s.reals {
		names[r.id] = r.name
	}
	out := make([]string, RingSize)
	var slot, id uint32
	it := inner.Iterate()
	for it.Next(&slot, &id) {
		if int(slot) < len(out) {
			out[slot] = names[id]
		}
	}
	return out, it.Err()
}

// freeReal empties a real's slot, so that flows still naming it pick
// again, and hands the id back.
func (d *Dataplane) freeReal(r *realSlot) {
	if err := d.objs.Reals.Put(r.id, &lbReal{}); err != nil {
		d.log.Warn("emptying a real's slot", "backend", r.name, "err", err)
	}
	d.realIDs.put(r.id)
}

func (r *realSlot) kernel() *lbReal {
	k := &lbReal{Addr: addrWords(r.addr), Gen: r.gen, Family: 4}
	if r.addr.Is6() {
		k.Family = 6
	}
	copy(k.Mac[:], r.mac)
	return k
}

func vipKey(k ServiceKey) lbVipKey {
	vk := lbVipKey{Addr: addrWords(k.Addr.Addr()), Port: htons(k.Addr.Port()), Proto: k.Proto, Family: 4}
	if k.Addr.Addr().Is6() {
		vk.Family = 6
	}
	return vk
}

// addrWords lays an address out as the program reads it from a packet:
// network-order bytes, IPv4 in the first word.
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		w[0] = binary.NativeEndian.Uint32(b[:])
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return w
}

func wordsAddr(w [4]uint32, family uint8) netip.Addr {
	var b [16]byte
	for i := range w {
		binary.NativeEndian.PutUint32(b[4*i:], w[i])
	}
	if family == 4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

func htons(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

func ntohs(p uint16) uint16 { return htons(p) }

func netipFrom(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// backendAddr is the IP of a backend's host:port (or bare host).
func backendAddr(hostport string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(hostport)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q is not an IP (a DR or tunnel real must be named by address)", hostport)
	}
	return a.Unmap(), nil
}

// zeroStats resets one per-CPU counter slot before its id serves anew.
func zeroStats(m *ebpf.Map, id uint32) error {
	zeros := make([]lbCounters, ebpf.MustPossibleCPU())
	if err := m.Put(id, zeros); err != nil {
		return fmt.Errorf("xdp: resetting counters %d: %w", id, err)
	}
	return nil
}
