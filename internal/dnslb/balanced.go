package dnslb

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// balanced is a load-balanced name: its A, AAAA and SRV answers come from
// the backends of pools, by health and weight.
type balanced struct {
	fqdn   string
	ttl    uint32
	count  int
	groups []*group
	// byView holds the groups of each view (indexed like the table's
	// views); nil entries use groups.
	byView [][]*group
	// fallback answers when every address is down; empty means fail open.
	fallback4, fallback6 []endpoint
	hasFallback          bool
}

// group is one failover group: a pool and how many healthy addresses it
// needs to be used.
type group struct {
	pool  *upstream.Pool
	min   int
	fqdn  string // the balanced name, for SRV targets
	cache atomic.Pointer[groupState]
}

// groupState is what the answers need from one pool snapshot, derived
// once per snapshot so queries parse no addresses.
type groupState struct {
	snap                *upstream.Snapshot
	ready4, ready6, rdy []endpoint // rdy: every ready backend, for SRV
	all4, all6, all     []endpoint
}

// endpoint is one backend as DNS answers show it.
type endpoint struct {
	ip     netip.Addr // invalid when the host is a name
	port   uint16
	weight int
	// target is the SRV target in wire format: the host when it is a
	// name, else a synthetic name that the zone answers with the address.
	target []byte
}

// state returns the group's addresses for the pool's current snapshot.
// Concurrent callers may derive the same state twice; both are equal.
func (g *group) state() *groupState {
	snap := g.pool.Snapshot()
	if gs := g.cache.Load(); gs != nil && gs.snap == snap {
		return gs
	}
	gs := &groupState{snap: snap}
	for _, b := range snap.All {
		e, ok := endpointOf(b, g.fqdn)
		if !ok {
			continue
		}
		e.weight = max(b.Weight, 1)
		gs.all = append(gs.all, e)
		if e.ip.Is4() {
			gs.all4 = append(gs.all4, e)
		} else if e.ip.IsValid() {
			gs.all6 = append(gs.all6, e)
		}
	}
	for _, b := range snap.Ready {
		e, ok := endpointOf(b, g.fqdn)
		if !ok {
			continue
		}
		e.weight = b.EffectiveWeight
		gs.rdy = append(gs.rdy, e)
		if e.ip.Is4() {
			gs.ready4 = append(gs.ready4, e)
		} else if e.ip.IsValid() {
			gs.ready6 = append(gs.ready6, e)
		}
	}
	g.cache.Store(gs)
	return gs
}

// endpointOf derives a backend's endpoint from its address.
func endpointOf(b *upstream.Backend, fqdn string) (endpoint, bool) {
	host, portS, err := net.SplitHostPort(b.Addr)
	if err != nil {
		return endpoint{}, false
	}
	port, _ := strconv.Atoi(portS)
	e := endpoint{port: uint16(port)}
	if ip, err := netip.ParseAddr(host); err == nil {
		e.ip = ip.Unmap()
		e.target = wireName(srvTarget(e.ip, fqdn))
	} else if _, ok := dns.IsDomainName(host); ok {
		e.target = wireName(host)
	} else {
		return endpoint{}, false
	}
	return e, e.target != nil
}

// srvTarget is the synthetic name an SRV answer gives an address:
// ip-192-0-2-1.<name> or ip6-<32 hex digits>.<name>.
func srvTarget(ip netip.Addr, fqdn string) string {
	if ip.Is4() {
		return "ip-" + strings.ReplaceAll(ip.String(), ".", "-") + "." + fqdn
	}
	return fmt.Sprintf("ip6-%x.%s", ip.As16(), fqdn)
}

// list returns the endpoints to choose from for the given query type:
// the first group with enough healthy addresses, else the first with any,
// else the fallback or (fail open) every address.
func (b *balanced) list(groups []*group, qtype uint16) []endpoint {
	var firstAny []endpoint
	for _, g := range groups {
		gs := g.state()
		l := pickList(gs, qtype, true)
		if len(l) >= g.min {
			return l
		}
		if firstAny == nil && len(l) > 0 {
			firstAny = l
		}
	}
	if firstAny != nil {
		return firstAny
	}
	if b.hasFallback {
		switch qtype {
		case typeA:
			return b.fallback4
		case typeAAAA:
			return b.fallback6
		}
		return nil
	}
	// Fail open: every address of the primary group that has any. A
	// client sent to a possibly dead server has a chance; one told
	// nothing has none.
	for _, g := range groups {
		if l := pickList(g.state(), qtype, false); len(l) > 0 {
			return l
		}
	}
	return nil
}

func pickList(gs *groupState, qtype uint16, ready bool) []endpoint {
	switch {
	case qtype == typeA && ready:
		return gs.ready4
	case qtype == typeA:
		return gs.all4
	case qtype == typeAAAA && ready:
		return gs.ready6
	case qtype == typeAAAA:
		return gs.all6
	case ready:
		return gs.rdy
	}
	return gs.all
}

// choose picks the endpoints of one answer into w.pick: count of them by
// weight without replacement, or all of them rotated.
func (b *balanced) choose(w *worker, l []endpoint) []*endpoint {
	w.pick = w.pick[:0]
	n := len(l)
	if n == 0 {
		return w.pick
	}
	if b.count == 0 || b.count >= n {
		start := int(w.rand() % uint64(n))
		for i := 0; i < n; i++ {
			w.pick = append(w.pick, &l[(start+i)%n])
		}
		return w.pick
	}
	// Weighted sampling without replacement: draw one by weight, set it
	// aside, draw again among the rest.
	w.idx = w.idx[:0]
	total := 0
	for i := range l {
		w.idx = append(w.idx, i)
		total += l[i].weight
	}
	for k := 0; k < b.count && len(w.idx) > 0; k++ {
		var j int
		if total <= 0 {
			j = int(w.rand() % uint64(len(w.idx)))
		} else {
			r := int(w.rand() % uint64(total))
			for j = 0; j < len(w.idx)-1; j++ {
				r -= l[w.idx[j]].weight
				if r < 0 {
					break
				}
			}
		}
		e := &l[w.idx[j]]
		w.pick = append(w.pick, e)
		total -= e.weight
		w.idx[j] = w.idx[len(w.idx)-1]
		w.idx = w.idx[:len(w.idx)-1]
	}
	return w.pick
}

// answer appends the records of a load-balanced answer for qtype (A,
// AAAA or SRV) and returns how many it wrote.
func (b *balanced) answer(w *worker, r *response, qtype uint16, groups []*group) int {
	picked := b.choose(w, b.list(groups, qtype))
	ttl := b.ttl
	start := len(r.buf)
	for _, e := range picked {
		switch qtype {
		case typeA:
			ip := e.ip.As4()
			r.buf = append(r.buf, 0xC0, headerLen, 0, typeA, 0, classIN,
				byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 4, ip[0], ip[1], ip[2], ip[3])
		case typeAAAA:
			ip := e.ip.As16()
			r.buf = append(r.buf, 0xC0, headerLen, 0, typeAAAA, 0, classIN,
				byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 16)
			r.buf = append(r.buf, ip[:]...)
		case typeSRV:
			rdlen := 6 + len(e.target)
			wt := min(e.weight, 65535)
			r.buf = append(r.buf, 0xC0, headerLen, 0, typeSRV, 0, classIN,
				byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), byte(rdlen>>8), byte(rdlen),
				0, 0, byte(wt>>8), byte(wt), byte(e.port>>8), byte(e.port))
			r.buf = append(r.buf, e.target...)
		}
	}
	r.add(uint16(len(picked)), 0, 0)
	if qtype != typeSRV {
		return len(picked)
	}
	// Glue: the addresses of the synthetic targets, each owned by a
	// pointer to its target inside the SRV record (which starts 18 bytes
	// into the record: pointer, type, class, TTL, length, priority,
	// weight, port).
	glue := 0
	pos := start
	for _, e := range picked {
		tgt := pos + srvFixedLen
		pos += srvFixedLen + len(e.target)
		if !e.ip.IsValid() || tgt > 0x3FFF {
			continue
		}
		if e.ip.Is4() {
			ip := e.ip.As4()
			r.buf = append(r.buf, 0xC0|byte(tgt>>8), byte(tgt), 0, typeA, 0, classIN,
				byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 4, ip[0], ip[1], ip[2], ip[3])
		} else {
			ip := e.ip.As16()
			r.buf = append(r.buf, 0xC0|byte(tgt>>8), byte(tgt), 0, typeAAAA, 0, classIN,
				byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 16)
			r.buf = append(r.buf, ip[:]...)
		}
		glue++
	}
	binary.BigEndian.PutUint16(r.buf[10:], binary.BigEndian.Uint16(r.buf[10:])+uint16(glue))
	return len(picked)
}

// srvFixedLen is the length of an SRV record before its target when the
// owner is a compression pointer.
const srvFixedLen = 2 + 2 + 2 + 4 + 2 + 6

// newBalanced builds a load-balanced name from its config.
func newBalanced(bc *config.Balanced, fqdn string, pools map[string]*upstream.Pool, views *viewSet) (*balanced, error) {
	b := &balanced{fqdn: fqdn, ttl: uint32(bc.TTL.D().Seconds()), count: bc.Count}
	mk := func(gcs []config.BalancedGroup) ([]*group, error) {
		var gs []*group
		for _, gc := range gcs {
			p := pools[gc.Pool]
			if p == nil {
				return nil, fmt.Errorf("%s: no pool named %q", fqdn, gc.Pool)
			}
			gs = append(gs, &group{pool: p, min: max(gc.MinHealthy, 1), fqdn: fqdn})
		}
		return gs, nil
	}
	var err error
	if b.groups, err = mk(bc.Groups); err != nil {
		return nil, err
	}
	if len(b.groups) == 0 {
		return nil, fmt.Errorf("%s: no pool", fqdn)
	}
	if len(bc.Views) > 0 {
		b.byView = make([][]*group, len(views.names))
		for _, vc := range bc.Views {
			i := views.index(vc.View)
			if i < 0 {
				return nil, fmt.Errorf("%s: no view named %q", fqdn, vc.View)
			}
			if b.byView[i], err = mk(vc.Groups); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range bc.Fallback {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%s: fallback %q: %w", fqdn, a, err)
		}
		ip = ip.Unmap()
		b.hasFallback = true
		e := endpoint{ip: ip, weight: 1}
		if ip.Is4() {
			b.fallback4 = append(b.fallback4, e)
		} else {
			b.fallback6 = append(b.fallback6, e)
		}
	}
	return b, nil
}
