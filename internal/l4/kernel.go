package l4

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/l4/xdp"
	"github.com/strata-lb/strata/internal/upstream"
)

// kernelPlane runs the services that forward in the kernel (forward: dr
// and tunnel) on the XDP data plane. The core's health checks, weights
// and drains decide what each pool's snapshot holds; the plane turns
// every new snapshot into a new Maglev table in the kernel. The data
// plane is loaded by the first config that needs it and kept across
// reloads, so the connection table and counters survive them.
type kernelPlane struct {
	log *slog.Logger

	mu       sync.Mutex
	dp       *xdp.Dataplane
	devices  map[string]bool
	services map[string]*kernelService // by service name
	subbed   map[*upstream.Pool]bool
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

// kernelService is one dr or tunnel service as the plane last loaded it.
type kernelService struct {
	cfg     config.L4Service // its name is cfg.Name
	key     xdp.ServiceKey
	mode    xdp.Mode
	pool    *upstream.Pool
	version uint64 // of the snapshot last loaded; 0 forces a load
}

// kernelResync is how often the plane reloads tables whose load missed a
// real's next hop, and the longest a pool change can go unseen if a
// notification were lost.
const kernelResync = time.Second

func newKernelPlane(log *slog.Logger) *kernelPlane {
	return &kernelPlane{log: log, devices: map[string]bool{}, services: map[string]*kernelService{}, subbed: map[*upstream.Pool]bool{}}
}

// isKernel reports whether a service forwards in the kernel.
func isKernel(sc config.L4Service) bool { return sc.Forward == "dr" || sc.Forward == "tunnel" }

// apply makes the kernel serve exactly the dr and tunnel services of cfg.
func (k *kernelPlane) apply(cfg *config.L4, pools map[string]*upstream.Pool) error {
	want := map[string]*kernelService{}
	for _, sc := range cfg.Services {
		if !isKernel(sc) {
			continue
		}
		ks, err := newKernelService(sc, pools)
		if err != nil {
			return err
		}
		want[sc.Name] = ks
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(want) == 0 && k.dp == nil {
		return nil
	}
	if k.dp == nil {
		dp, err := xdp.New(xdp.Options{Logger: k.log})
		if err != nil {
			return fmt.Errorf("forward dr and tunnel need XDP: %w", err)
		}
		k.dp = dp
		k.kick, k.stop, k.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go k.run()
	}
	var devs []string
	mode := xdp.Auto
	if x := cfg.XDP; x != nil {
		devs = x.Devices
		mode = xdp.AttachMode(x.Mode)
	}
	keep := map[string]bool{}
	for _, dev := range devs {
		keep[dev] = true
		if k.devices[dev] {
			continue
		}
		m := mode
		if m == xdp.Auto && isVeth(dev) {
			// Native XDP on veth transmits only when the peer runs a
			// program too, which strata cannot promise: generic works
			// everywhere.
			m = xdp.Generic
		}
		if _, err := k.dp.Attach(dev, m); err != nil {
			return err
		}
		k.devices[dev] = true
	}
	for dev := range k.devices {
		if !keep[dev] {
			if err := k.dp.Detach(dev); err != nil {
				k.log.Warn("detaching XDP", "dev", dev, "err", err)
			}
			delete(k.devices, dev)
		}
	}
	for name, old := range k.services {
		if nw := want[name]; nw == nil || nw.key != old.key {
			if err := k.dp.RemoveService(old.key); err != nil {
				k.log.Warn("removing a kernel service", "service", name, "err", err)
			}
		}
	}
	// New and changed services are loaded before Apply returns, so that
	// the VIP answers as soon as the config is in.
	for _, ks := range want {
		if !k.subbed[ks.pool] {
			k.subbed[ks.pool] = true
			ks.pool.Subscribe(func(*upstream.Snapshot) { k.poke() })
		}
		k.load(ks)
	}
	k.services = want
	return nil
}

func newKernelService(sc config.L4Service, pools map[string]*upstream.Pool) (*kernelService, error) {
	pool := pools[sc.Pool]
	if pool == nil {
		return nil, fmt.Errorf("service %s: no pool named %q", sc.Name, sc.Pool)
	}
	ap, err := netip.ParseAddrPort(sc.Listen)
	if err != nil {
		return nil, fmt.Errorf("service %s: forward %s needs one IP and port: %w", sc.Name, sc.Forward, err)
	}
	key := xdp.ServiceKey{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Proto: unix.IPPROTO_TCP}
	if sc.Protocol == "udp" {
		key.Proto = unix.IPPROTO_UDP
	}
	mode := xdp.DR
	if sc.Forward == "tunnel" {
		mode = xdp.Tunnel
	}
	return &kernelService{cfg: sc, key: key, mode: mode, pool: pool}, nil
}

// load puts the pool's current snapshot in the kernel. A table that left a
// real out for want of its next hop's MAC is loaded again on the next
// resync.
func (k *kernelPlane) load(ks *kernelService) {
	snap := ks.pool.Snapshot()
	if err := k.dp.SetService(ks.key, ks.mode, snap); err != nil {
		k.log.Warn("loading a kernel service", "service", ks.cfg.Name, "err", err)
		ks.version = 0
		return
	}
	ks.version = snap.Version
	if k.dp.Pending(ks.key) > 0 {
		ks.version = 0
	}
}

// poke asks the loop to look at the pools; it runs under a pool's lock,
// so it never blocks.
func (k *kernelPlane) poke() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

func (k *kernelPlane) run() {
	defer close(k.done)
	t := time.NewTicker(kernelResync)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-k.kick:
		case <-t.C:
		}
		k.mu.Lock()
		for _, ks := range k.services {
			if ks.pool.Snapshot().Version != ks.version {
				k.load(ks)
			}
		}
		k.mu.Unlock()
	}
}

// close detaches the program and frees its maps: the VIPs' packets go to
// the stack again.
func (k *kernelPlane) close() error {
	k.mu.Lock()
	dp := k.dp
	k.dp = nil
	k.services = map[string]*kernelService{}
	k.devices = map[string]bool{}
	k.mu.Unlock()
	if dp == nil {
		return nil
	}
	close(k.stop)
	<-k.done
	return dp.Close()
}

// status lists the kernel services with the kernel's counters: packets,
// bytes and new flows from clients; replies never cross the balancer, so
// the out columns stay 0.
func (k *kernelPlane) status() []ServiceStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dp == nil {
		return nil
	}
	byKey := map[xdp.ServiceKey]xdp.ServiceStats{}
	for _, st := range k.dp.Stats() {
		byKey[st.Key] = st
	}
	var out []ServiceStatus
	for _, ks := range k.services {
		st := byKey[ks.key]
		ss := ServiceStatus{
			Name: ks.cfg.Name, Protocol: ks.cfg.Protocol, Listen: ks.cfg.Listen, Pool: ks.pool.Name(),
			Scheduler: "mh", Forward: ks.cfg.Forward, Stats: kernelStats(st.Total), Drops: map[string]uint64{},
		}
		if st.Fingerprint != 0 {
			ss.Fingerprint = fmt.Sprintf("%016x", st.Fingerprint)
		}
		reals := map[string]xdp.RealStats{}
		for _, r := range st.Reals {
			reals[r.Name] = r
		}
		for _, b := range ks.pool.Snapshot().All {
			r := reals[b.Name]
			status := b.Status()
			if status == "up" && !r.InTable {
				status = "unresolved" // ready, but its MAC is not known yet
			}
			inTable := r.InTable
			ss.Backends = append(ss.Backends, BackendStats{
				Name: b.Name, Address: b.Addr, Status: status, Weight: b.Weight,
				EffectiveWeight: b.EffectiveWeight, InTable: &inTable, Stats: kernelStats(r.Counters),
			})
		}
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func kernelStats(c xdp.Counters) Stats {
	return Stats{Conns: c.Flows, InPkts: c.Packets, InBytes: c.Bytes}
}

// flows lists the kernel's connection table as connection rows.
func (k *kernelPlane) flows(limit int) []ConnStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dp == nil {
		return nil
	}
	names := map[xdp.ServiceKey]*kernelService{}
	for _, ks := range k.services {
		names[ks.key] = ks
	}
	var out []ConnStatus
	for _, f := range k.dp.Flows(limit) {
		c := ConnStatus{Protocol: "tcp", Client: f.Client.String(), VIP: f.Service.Addr.String(), Backend: f.Backend, State: "XDP"}
		if f.Service.Proto == unix.IPPROTO_UDP {
			c.Protocol = "udp"
		}
		if ks := names[f.Service]; ks != nil {
			c.Service, c.Pool = ks.cfg.Name, ks.pool.Name()
			if b := ks.pool.Snapshot().Lookup(f.Backend); b != nil {
				c.Backend = b.Addr
			}
		}
		out = append(out, c)
	}
	return out
}

// global returns the program's global counters, nil without XDP.
func (k *kernelPlane) global() map[string]uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dp == nil {
		return nil
	}
	return k.dp.Global()
}

func isVeth(dev string) bool {
	l, err := netlink.LinkByName(dev)
	return err == nil && l.Type() == "veth"
}
