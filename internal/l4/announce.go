package l4

import (
	"context"
	"net/netip"
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
	speaker  *bgp.Speaker
	cfg      config.L4BGP // the config the speaker started with
	lameduck time.Duration

	// syncMu makes each sync whole, so a tick that read the old VIPs
	// cannot undo what a reload's sync just did.
	syncMu    sync.Mutex
	mu        sync.Mutex
	vips      []vip
	draining  bool      // withdrawn for good: shutting down
	drainedAt time.Time // when draining began

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
	vs, draining := a.vips, a.draining
	a.mu.Unlock()
	want := map[netip.Prefix]bool{}
	if !draining {
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
	a.draining, a.drainedAt = true, time.Now()
	a.mu.Unlock()
	a.sync()
	a.speaker.Logger().Info("withdrew every VIP: lameduck", "for", a.lameduck.String())
}

// waitLameduck returns once the lameduck time since drain has passed, or
// ctx ended.
func (a *announcer) waitLameduck(ctx context.Context) {
	a.mu.Lock()
	left := a.lameduck - time.Since(a.drainedAt)
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
	if s.opts.Registry != nil {
		if err := s.opts.Registry.Register(bgp.Collector{S: sp}); err != nil {
			sp.Close(context.Background())
			return nil, err
		}
	}
	a := &announcer{speaker: sp, cfg: *cfg, lameduck: cfg.Lameduck.D(), stop: make(chan struct{}), done: make(chan struct{})}
	a.cfg.Peers = append([]config.L4BGPPeer(nil), cfg.Peers...)
	go a.run()
	return a, nil
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

// BGPPeers returns the state of the BGP sessions, or nil without l4.bgp.
func (s *Server) BGPPeers() []bgp.PeerStatus {
	s.mu.Lock()
	a := s.bgp
	s.mu.Unlock()
	if a == nil {
		return nil
	}
	return a.speaker.Peers()
}

// BGPAnnounced returns the prefixes announced now, or nil without l4.bgp.
func (s *Server) BGPAnnounced() []netip.Prefix {
	s.mu.Lock()
	a := s.bgp
	s.mu.Unlock()
	if a == nil {
		return nil
	}
	return a.speaker.Announced()
}
