package l4

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// service is one virtual service of one runtime. A reload builds new ones;
// connections keep the service they were accepted under until they end,
// so every field is fixed once built.
type service struct {
	name, proto string
	cfg         config.L4Service
	pool        *upstream.Pool
	sched       scheduler
	persist     *persistTable // nil without persistence
	limiter     *ipLimiter    // nil without accept_rate
	counters    *svcCounters  // shared with the same-named service of other runtimes
	okFn        func(*upstream.Backend) bool

	maxConns       int64
	upper, lower   int64
	firstByte      time.Duration
	connectTimeout time.Duration
	tcpIdle        time.Duration
	finIdle        time.Duration
	udpIdle        time.Duration
	proxyVersion   byte
	sorry          *upstream.Backend // nil without a sorry server
}

// buildService makes the runtime of one service config. prev is the
// same-named service of the running runtime, or nil; its counters, and its
// persistence table when persistence is unchanged, carry over so that a
// reload neither resets statistics nor moves sticky clients.
func buildService(sc config.L4Service, pools map[string]*upstream.Pool, prev *service, now func() time.Time) (*service, error) {
	pool := pools[sc.Pool]
	if pool == nil {
		return nil, fmt.Errorf("service %s: no pool named %q", sc.Name, sc.Pool)
	}
	sched, err := newScheduler(sc.Scheduler, schedOptions{mhFallback: sc.MHFallback, mhPort: sc.MHPort})
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", sc.Name, err)
	}
	s := &service{
		name:           sc.Name,
		proto:          sc.Protocol,
		cfg:            sc,
		pool:           pool,
		sched:          sched,
		maxConns:       int64(sc.MaxConns),
		upper:          int64(sc.UpperThreshold),
		lower:          int64(sc.LowerThreshold),
		firstByte:      sc.FirstByteTimeout.D(),
		connectTimeout: sc.ConnectTimeout.D(),
		tcpIdle:        sc.Timeouts.TCP.D(),
		finIdle:        sc.Timeouts.TCPFin.D(),
		udpIdle:        sc.Timeouts.UDP.D(),
	}
	switch sc.ProxyProtocol {
	case "v1":
		s.proxyVersion = 1
	case "v2":
		s.proxyVersion = 2
	}
	if s.connectTimeout <= 0 {
		s.connectTimeout = config.DefaultL4ConnectTimeout.D()
	}
	for _, d := range []*time.Duration{&s.tcpIdle, &s.finIdle, &s.udpIdle} {
		if *d <= 0 {
			return nil, fmt.Errorf("service %s: idle timeouts must be positive", sc.Name)
		}
	}
	if sc.SorryServer != "" {
		s.sorry = &upstream.Backend{Spec: upstream.Spec{Name: "sorry:" + sc.SorryServer, Addr: sc.SorryServer, Weight: 1}, Pool: "(sorry)", Healthy: true, EffectiveWeight: 1, Stats: new(upstream.Stats)}
	}
	if prev != nil && prev.proto == s.proto {
		s.counters = prev.counters
		if p := sc.Persistence; p != nil && prev.persist != nil && prev.cfg.Persistence != nil && *prev.cfg.Persistence == *p {
			s.persist = prev.persist
		}
	} else {
		s.counters = newSvcCounters()
	}
	if p := sc.Persistence; p != nil && s.persist == nil {
		s.persist = newPersistTable(p.Timeout.D(), p.Netmask, p.Netmask6, now)
	}
	if sc.AcceptRate > 0 {
		if prev != nil && prev.limiter != nil && prev.cfg.AcceptRate == sc.AcceptRate && prev.cfg.AcceptBurst == sc.AcceptBurst {
			s.limiter = prev.limiter
		} else {
			s.limiter = newIPLimiter(float64(sc.AcceptRate), float64(max(sc.AcceptBurst, 1)), now)
		}
	}
	s.okFn = s.belowThreshold
	return s, nil
}

// belowThreshold reports whether b may take a new connection under the
// service's upper and lower thresholds (LVS -x and -y): a backend that
// reached the upper one is overloaded until it falls to the lower one.
func (s *service) belowThreshold(b *upstream.Backend) bool {
	if s.upper <= 0 {
		return true
	}
	d := s.counters.dest(b)
	n := d.active.Load() + d.inactive.Load()
	if d.overloaded.Load() {
		if n > s.lower {
			return false
		}
		d.overloaded.Store(false)
		return true
	}
	if n >= s.upper {
		d.overloaded.Store(true)
		return false
	}
	return true
}

// choose picks the backend for a new connection from client to vip, or
// returns nil when none may take it. Persistence comes first, then the
// scheduler; draining, unhealthy and weight-0 backends are never chosen
// because they are not in the snapshot's ready set, and a persistent
// client of one is rescheduled.
func (s *service) choose(client, vip netip.AddrPort) *upstream.Backend {
	snap := s.pool.Snapshot()
	if s.persist != nil {
		if name := s.persist.lookup(client.Addr()); name != "" {
			if b := snap.Lookup(name); b != nil && b.Available() && s.okFn(b) {
				s.persist.store(client.Addr(), b.Name)
				return b
			}
		}
	}
	b := s.sched.pick(snap, flow{client: client, vip: vip}, s.okFn)
	if b != nil && s.persist != nil {
		s.persist.store(client.Addr(), b.Name)
	}
	return b
}

// idleTimeout is the idle timeout of a connection in state st.
func (s *service) idleTimeout(st uint32) time.Duration {
	switch st {
	case stateFinWait:
		return s.finIdle
	case stateUDP:
		return s.udpIdle
	}
	return s.tcpIdle
}
