package l4

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/l4/bgp"
	"github.com/strata-lb/strata/internal/upstream"
)

// announceEvery is how often the announcer looks at the pools. A backend
// that fails its health check leaves the pool's ready set at once, so a
// VIP whose last backend failed is withdrawn within this much more.
const announceEvery = 200 * time.Millisecond

// vip is one address to announce and the pools of the services on it.
type vip struct {
	prefix netip.Prefix
	pools  []*upstream.Pool
}

// announcer keeps the BGP speaker's routes in step with what this node
// can serve: a VIP is announced while at least one service on it is
// listening (its Apply succeeded) and has a ready backend in its pool.
// Several services share a VIP by port; one ready service keeps the VIP,
// as a withdrawal would take the others' clients too.
type announcer struct {
	speaker *bgp.Speaker
	lo      *loAddrs

	// syncMu makes each sync whole, so a tick that read the old VIPs
	// cannot undo what a reload's sync just did.
	syncMu    sync.Mutex
	mu        sync.Mutex
	cfg       config.L4BGP // what the speaker runs now (asn, router_id and listen_port as it started)
	lameduck  time.Duration
	vips      []vip
	drained   bool      // withdrawn by an operator, until undrained
	drainedAt time.Time // when the operator drained the node
	draining  bool      // withdrawn for good: shutting down
	stoppedAt time.Time // when draining began

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

func vipsOf(cfg *config.L4, pools map[string]*upstream.Pool) []vip {
	byAddr := map[netip.Addr]*vip{}
	var out []netip.Addr
	for _, sc := range cfg.Services {
		host, _, _, err := config.ParseL4Listen(sc.Listen)
		if err != nil {
			continue
		}
		a, err := netip.ParseAddr(host)
		if err != nil || a.IsUnspecified() {
			continue // validation refuses these when l4.bgp is set
		}
		a = a.Unmap()
		v := byAddr[a]
		if v == nil {
			v = &vip{prefix: netip.PrefixFrom(a, a.BitLen())}
			byAddr[a] = v
			out = append(out, a)
		}
		if p := pools[sc.Pool]; p != nil {
			v.pools = append(v.pools, p)
		}
	}
	vs := make([]vip, 0, len(out))
	for _, a := range out {
		vs = append(vs, *byAddr[a])
	}
	return vs
}

func (a *announcer) set(vs []vip) {
	a.mu.Lock()
	a.vips = vs
	a.mu.Unlock()
	a.sync()
}

// sync announces the ready VIPs and withdraws the rest.
func (a *announcer) sync() {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	a.mu.Lock()
	vs, off := a.vips, a.draining || a.drained
	a.mu.Unlock()
	want := map[netip.Prefix]bool{}
	if !off {
		for _, v := range vs {
			for _, p := range v.pools {
				if len(p.Snapshot().Ready) > 0 {
					want[v.prefix] = true
					break
				}
			}
		}
	}
	for _, p := range a.speaker.Announced() {
		if !want[p] {
			if err := a.speaker.Withdraw(p); err != nil {
				a.speaker.Logger().Warn("withdrawing", "prefix", p.String(), "err", err)
			}
		}
	}
	for p := range want {
		if err := a.speaker.Announce(p); err != nil {
			a.speaker.Logger().Warn("announcing", "prefix", p.String(), "err", err)
		}
	}
}

func (a *announcer) run() {
	defer close(a.done)
	t := time.NewTicker(announceEvery)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.sync()
		}
	}
}

// drain withdraws every VIP for good, once; later calls do nothing.
func (a *announcer) drain() {
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		return
	}
	a.draining, a.stoppedAt = true, time.Now()
	a.mu.Unlock()
	a.sync()
	a.speaker.Logger().Info("withdrew every VIP: lameduck", "for", a.lameduck.String())
}

// waitLameduck returns once the lameduck time since drain has passed, or
// ctx ended.
func (a *announcer) waitLameduck(ctx context.Context) {
	a.mu.Lock()
	left := a.lameduck - time.Since(a.stoppedAt)
	a.mu.Unlock()
	if left <= 0 {
		return
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (a *announcer) close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		close(a.stop)
		<-a.done
		a.closeErr = a.speaker.Close(ctx)
	})
	return a.closeErr
}

// startAnnouncer starts the speaker of cfg and its loop.
func (s *Server) startAnnouncer(cfg *config.L4BGP) (*announcer, error) {
	sp, err := bgp.Start(context.Background(), cfg, s.log)
	if err != nil {
		return nil, err
	}
	a := &announcer{speaker: sp, lo: newLoAddrs(sp.Logger()), cfg: cloneBGP(cfg), lameduck: cfg.Lameduck.D(), stop: make(chan struct{}), done: make(chan struct{})}
	if s.opts.Registry != nil {
		if err := s.opts.Registry.Register(bgp.Collector{S: sp, Drained: a.isDrained}); err != nil {
			sp.Close(context.Background())
			return nil, err
		}
	}
	go a.run()
	return a, nil
}

func cloneBGP(c *config.L4BGP) config.L4BGP {
	out := *c
	out.Peers = slices.Clone(c.Peers)
	out.Communities = slices.Clone(c.Communities)
	if c.VIPOnLo != nil {
		on := *c.VIPOnLo
		out.VIPOnLo = &on
	}
	return out
}

// reload applies a changed l4.bgp to the running speaker. The peers,
// their timers and passwords, the route attributes, lameduck and
// vip_on_lo change live; asn, router_id and listen_port are the
// speaker's identity, fixed at its start, and a change of them is logged
// as needing a restart. Removing l4.bgp withdraws every VIP (Apply
// passes no VIPs) but keeps the sessions until a restart.
func (a *announcer) reload(next *config.L4BGP) {
	log := a.speaker.Logger()
	if next == nil {
		log.Warn("l4.bgp was removed: every VIP is withdrawn; the BGP sessions stay up until a restart")
		return
	}
	a.mu.Lock()
	cur := a.cfg
	a.mu.Unlock()
	eff := cloneBGP(next)
	for _, f := range []struct {
		field    string
		old, new any
	}{
		{"l4.bgp.asn", cur.ASN, next.ASN},
		{"l4.bgp.router_id", cur.RouterID, next.RouterID},
		{"l4.bgp.listen_port", cur.ListenPort, next.ListenPort},
	} {
		if f.old != f.new {
			log.Warn("l4.bgp changed where only a restart applies it: the speaker keeps its old value", "field", f.field, "running", f.old, "configured", f.new)
		}
	}
	eff.ASN, eff.RouterID, eff.ListenPort = cur.ASN, cur.RouterID, cur.ListenPort
	if err := a.speaker.SetPeers(context.Background(), &eff); err != nil {
		log.Warn("applying l4.bgp.peers", "err", err)
		eff.Peers, eff.HoldTime, eff.Keepalive = cur.Peers, cur.HoldTime, cur.Keepalive
	}
	if err := a.speaker.SetAttrs(bgp.AttrsOf(&eff)); err != nil {
		log.Warn("applying l4.bgp route attributes", "err", err)
	}
	a.mu.Lock()
	a.cfg, a.lameduck = eff, eff.Lameduck.D()
	a.mu.Unlock()
}

// holdVIPs puts the VIPs of cfg on lo, when vip_on_lo asks for it, and
// takes off the ones strata put there that cfg no longer has. It runs
// before the listeners open, so that they can bind the VIPs.
//
// A VIP whose services all forward in the kernel (dr, tunnel) stays off
// lo: the XDP program takes its packets before the stack sees them, so
// no socket needs the address, and a node whose strata died (XDP going
// with it) would otherwise answer the packets of its flows with resets
// until the router drops its route. Off lo, the node drops them, the
// client sends them again, and once the route is gone they reach another
// node, which picks the same backend.
func (a *announcer) holdVIPs(cfg *config.L4) error {
	var want []netip.Addr
	if cfg != nil && cfg.BGP != nil && cfg.BGP.VIPOnLoEnabled() {
		proxied := *cfg
		proxied.Services = nil
		for _, sc := range cfg.Services {
			if !isKernel(sc) {
				proxied.Services = append(proxied.Services, sc)
			}
		}
		for _, v := range vipsOf(&proxied, nil) {
			want = append(want, v.prefix.Addr())
		}
	}
	if err := a.lo.set(want); err != nil {
		return fmt.Errorf("l4.bgp.vip_on_lo: %w (strata needs CAP_NET_ADMIN to manage lo; or set vip_on_lo: false and add the VIPs yourself)", err)
	}
	return nil
}

// setDrained withdraws every VIP (drain) or lets the ready ones be
// announced again (undrain). A drained node keeps its VIPs on lo and
// keeps serving whatever still arrives.
func (a *announcer) setDrained(on bool) {
	a.mu.Lock()
	if a.drained != on {
		a.drained = on
		if on {
			a.drainedAt = time.Now()
		}
	}
	a.mu.Unlock()
	a.sync()
	if on {
		a.speaker.Logger().Info("node drained: every VIP withdrawn, still serving")
	} else {
		a.speaker.Logger().Info("node undrained: ready VIPs announced")
	}
}

func (a *announcer) isDrained() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.drained
}

// ErrNoBGP is returned by the drain calls of a node without l4.bgp.
var ErrNoBGP = errors.New("l4.bgp is not configured: the node announces nothing to drain")

// DrainNode withdraws every VIP of the node from BGP, so the routers
// send it no new flows, while it keeps serving the flows that still
// arrive; UndrainNode undoes it. The state lasts until undrained or the
// process ends, through reloads.
func (s *Server) DrainNode(on bool) error {
	s.mu.Lock()
	a := s.bgp
	s.mu.Unlock()
	if a == nil {
		return ErrNoBGP
	}
	a.setDrained(on)
	return nil
}

// Lameduck withdraws every VIP at once, so the routers move new clients
// to the other nodes while this one still serves; Shutdown waits out the
// rest of l4.bgp.lameduck.
func (s *Server) Lameduck() {
	s.mu.Lock()
	a := s.bgp
	s.mu.Unlock()
	if a != nil {
		a.drain()
	}
}
