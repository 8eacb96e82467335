package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/netpark"
	"github.com/strata-lb/strata/internal/sockopt"
	"github.com/strata-lb/strata/internal/upstream"
)

// Reporter receives connection outcomes for passive ejection.
type Reporter interface {
	Success(b *upstream.Backend)
	Failure(b *upstream.Backend)
}

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// Passive, when not nil, is told whether each backend connection
	// succeeded.
	Passive Reporter
	// Registry, when not nil, gets the per-service and per-backend
	// collector.
	Registry prometheus.Registerer
	// Now is the clock of persistence and rate limits; time.Now when nil.
	Now func() time.Time
	// EstimateEvery is how often rates are computed (default 2s, as
	// LVS's estimator).
	EstimateEvery time.Duration
}

// Server is the L4 load balancer: listeners, the services behind them and
// the connection table of every runtime.
type Server struct {
	opts    Options
	log     *slog.Logger
	passive Reporter
	conns   *connTable
	// parker holds the idle directions of TCP connections; nil when the
	// kernel refused an epoll set, and then every direction keeps its
	// goroutine.
	parker *netpark.Parker
	// parkAfter is how long a quiet direction keeps its goroutine;
	// tests shorten it before the first connection.
	parkAfter time.Duration
	// wg counts every goroutine Shutdown waits for: the rate estimator,
	// the idle sweeper, one per listener's accept or read loop, and one
	// per live connection or session. A connection's Add comes from its listener's loop, whose
	// own count is held already, so no Add from zero races with Wait.
	wg sync.WaitGroup

	mu        sync.Mutex // serialises Apply and Shutdown
	listeners map[string]*listener
	services  atomic.Pointer[[]*service]
	shutdown  bool
	stopEst   chan struct{}
	kernel    *kernelPlane // the forward: dr and tunnel services
	bgp       *announcer   // nil until a config has l4.bgp
}

// listener is one socket: a TCP listener or a UDP socket, and the service
// it feeds, swapped atomically on reload.
type listener struct {
	key   string // protocol/configured address
	proto string
	tcp   *net.TCPListener
	pc    *net.UDPConn
	udp   *udpTable
	svc   atomic.Pointer[service]
	done  chan struct{}
}

func (l *listener) addr() net.Addr {
	if l.tcp != nil {
		return l.tcp.Addr()
	}
	return l.pc.LocalAddr()
}

func (l *listener) close() {
	if l.tcp != nil {
		l.tcp.Close()
	} else {
		l.pc.Close()
	}
}

// NewServer makes a Server with no services; Apply opens them.
func NewServer(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.EstimateEvery <= 0 {
		opts.EstimateEvery = 2 * time.Second
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger.With("role", "l4"),
		passive:   opts.Passive,
		conns:     newConnTable(),
		listeners: map[string]*listener{},
		stopEst:   make(chan struct{}),
		parkAfter: defaultParkAfter,
	}
	s.kernel = newKernelPlane(s.log)
	if pk, err := netpark.New("l4-parker"); err != nil {
		s.log.Warn("idle TCP connections keep a goroutine per direction", "err", err)
	} else {
		s.parker = pk
	}
	s.services.Store(&[]*service{})
	if opts.Registry != nil {
		if err := opts.Registry.Register(&collector{s: s}); err != nil {
			return nil, fmt.Errorf("l4: registering metrics: %w", err)
		}
	}
	s.wg.Add(2)
	go s.estimate()
	go s.sweep()
	return s, nil
}

// Apply builds the services of cfg over pools and swaps them in. Sockets
// that stay keep running and take the new service for new connections;
// connections already open keep the service they started with. New
// sockets are opened before anything changes, so a failed Apply (a port in
// use, a missing pool) leaves the running services alone. A nil cfg stops
// every listener.
func (s *Server) Apply(cfg *config.L4, pools map[string]*upstream.Pool) error {
	if cfg == nil {
		cfg = &config.L4{}
	}
	prev := map[string]*service{}
	for _, svc := range *s.services.Load() {
		prev[svc.name] = svc
	}
	type want struct {
		svc  *service
		addr string
	}
	var services []*service
	wants := map[string]want{} // listener key → what it should serve
	var order []string
	for i := range cfg.Services {
		sc := cfg.Services[i]
		if isKernel(sc) {
			continue // the kernel plane's, below
		}
		svc, err := buildService(sc, pools, prev[sc.Name], s.opts.Now)
		if err != nil {
			return fmt.Errorf("applying l4 config: %w", err)
		}
		services = append(services, svc)
		host, lo, hi, err := config.ParseL4Listen(sc.Listen)
		if err != nil {
			return fmt.Errorf("applying l4 config: service %s: %w", sc.Name, err)
		}
		for p := lo; p <= hi; p++ {
			addr := net.JoinHostPort(host, strconv.Itoa(p))
			key := sc.Protocol + "/" + addr
			if _, dup := wants[key]; dup {
				return fmt.Errorf("applying l4 config: %s %s used by two services", sc.Protocol, addr)
			}
			wants[key] = want{svc: svc, addr: addr}
			order = append(order, key)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return errors.New("applying l4 config: server is shut down")
	}
	if cfg.BGP != nil && s.bgp == nil {
		a, err := s.startAnnouncer(cfg.BGP)
		if err != nil {
			return fmt.Errorf("applying l4 config: %w", err)
		}
		s.bgp = a
	} else if s.bgp != nil {
		s.bgp.reload(cfg.BGP)
	}
	if s.bgp != nil {
		if err := s.bgp.holdVIPs(cfg); err != nil {
			return fmt.Errorf("applying l4 config: %w", err)
		}
	}
	if err := s.kernel.apply(cfg, pools); err != nil {
		return fmt.Errorf("applying l4 config: %w", err)
	}
	// A configured address names a running socket when it is the same
	// text, or the address that socket is bound to (one opened on port 0,
	// then configured by its real port).
	kept := map[string]*listener{}
	claimed := map[*listener]bool{}
	for key := range wants {
		if l, ok := s.listeners[key]; ok {
			kept[key], claimed[l] = l, true
		}
	}
	for key, w := range wants {
		if kept[key] != nil {
			continue
		}
		for _, l := range s.listeners {
			if !claimed[l] && l.proto == w.svc.proto && l.addr().String() == w.addr {
				kept[key], claimed[l] = l, true
				break
			}
		}
	}
	opened := map[string]*listener{}
	for _, key := range order {
		if kept[key] != nil {
			continue
		}
		w := wants[key]
		l, err := listen(key, w.svc.proto, w.addr)
		if err != nil {
			for _, o := range opened {
				o.close()
			}
			return fmt.Errorf("applying l4 config: %w", err)
		}
		opened[key] = l
	}

	next := make(map[string]*listener, len(wants))
	for key, l := range kept {
		l.svc.Store(wants[key].svc)
		next[key] = l
	}
	for key, l := range opened {
		l.svc.Store(wants[key].svc)
		next[key] = l
		// Counted here, under mu and before Shutdown can set shutdown,
		// so Shutdown's Wait sees this loop.
		s.wg.Add(1)
		if l.tcp != nil {
			go s.serveTCP(l)
		} else {
			go s.serveUDP(l)
		}
		s.log.Info("listening", "service", wants[key].svc.name, "protocol", l.proto, "addr", l.addr().String())
		if sockopt.Nonlocal(wants[key].addr) {
			s.log.Warn("no interface holds this address yet: the service serves once it is added (IP_FREEBIND)",
				"service", wants[key].svc.name, "addr", wants[key].addr)
		}
	}
	for _, l := range s.listeners {
		if !claimed[l] {
			// Established TCP connections outlive their listener; UDP
			// sessions cannot, as replies leave from its socket.
			l.close()
			s.log.Info("stopped listening", "protocol", l.proto, "addr", l.addr().String())
		}
	}
	s.listeners = next
	s.services.Store(&services)
	if s.bgp != nil {
		var vs []vip
		if cfg.BGP != nil {
			vs = vipsOf(cfg, pools)
		}
		s.bgp.set(vs)
	}
	return nil
}

func listen(key, proto, addr string) (*listener, error) {
	l := &listener{key: key, proto: proto, done: make(chan struct{})}
	switch proto {
	case "tcp":
		// FREEBIND: a VIP that keepalived has not moved here yet is
		// listened on all the same (sockopt.Listen).
		ln, err := sockopt.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening on tcp %s: %w", addr, err)
		}
		l.tcp = ln.(*net.TCPListener)
	case "udp":
		pc, err := sockopt.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
		}
		l.pc = pc.(*net.UDPConn)
		// One socket takes every client's datagrams: room for a burst
		// that comes while its reader is off the CPU.
		sockopt.GrowReceiveBuffer(l.pc, udpRecvBuffer)
		l.udp = newUDPTable()
	default:
		return nil, fmt.Errorf("unknown protocol %q", proto)
	}
	return l, nil
}

// Relays reports whether a connection from ap is one of this server's own
// connections to a backend: a client's bytes that l4 is relaying. The
// admin listener asks before it obeys a write, because through an l4
// service whose backend is the admin listener any client could otherwise
// write from a loopback peer. The connection table is scanned, so this is
// for rare calls, not for a data path.
func (s *Server) Relays(ap netip.AddrPort) bool {
	return s.conns.relays(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// Addrs returns the bound addresses of the named service's sockets, for
// tests and embedders that asked for port 0.
func (s *Server) Addrs(service string) []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.listeners {
		if l.svc.Load().name == service {
			out = append(out, l.addr())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Shutdown withdraws the VIPs from BGP and keeps serving for
// l4.bgp.lameduck, so the routers move new clients to other nodes first;
// then it closes every socket and waits until ctx ends for connections to
// finish, cuts the rest, and ends the BGP sessions.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	a := s.bgp
	s.mu.Unlock()
	if a != nil {
		a.drain()
		a.waitLameduck(ctx)
	}
	err := s.shutdownPlanes(ctx)
	if a != nil {
		if cerr := a.close(ctx); cerr != nil && err == nil {
			err = fmt.Errorf("l4: closing BGP: %w", cerr)
		}
		// The listeners are closed: the VIPs strata put on lo go.
		if lerr := a.lo.set(nil); lerr != nil && err == nil {
			err = fmt.Errorf("l4: taking the VIPs off lo: %w", lerr)
		}
	}
	return err
}

func (s *Server) shutdownPlanes(ctx context.Context) error {
	s.mu.Lock()
	if !s.shutdown {
		s.shutdown = true
		close(s.stopEst)
	}
	for _, l := range s.listeners {
		l.close()
	}
	s.listeners = map[string]*listener{}
	s.mu.Unlock()
	// Detaching XDP first hands the VIPs back to the stack at once; the
	// kernel's flows have no connection of strata's to wait for.
	if err := s.kernel.close(); err != nil {
		s.log.Warn("closing the XDP data plane", "err", err)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.closeParker()
		return nil
	case <-ctx.Done():
	}
	// Cut what is left: closing a connection's sockets ends its
	// goroutines, which then remove it from the table; abort finishes
	// the parked directions itself.
	s.closeAll()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	s.closeParker()
	return fmt.Errorf("l4: shutting down: %w", ctx.Err())
}

func (s *Server) closeParker() {
	if s.parker != nil {
		s.parker.Close()
	}
}

// closeAll closes both sockets of every connection and session.
func (s *Server) closeAll() {
	var closers []func()
	s.conns.each(func(c *conn) {
		if c.closer != nil {
			closers = append(closers, c.closer)
		}
	})
	for _, f := range closers {
		f()
	}
}

// estimate computes rates every EstimateEvery, as LVS's estimator does,
// and forgets the counters of backends that have left (svcCounters.prune).
func (s *Server) estimate() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.EstimateEvery)
	defer t.Stop()
	secs := s.opts.EstimateEvery.Seconds()
	for {
		select {
		case <-s.stopEst:
			return
		case <-t.C:
		}
		for _, svc := range *s.services.Load() {
			svc.counters.prune(svc.pool.Snapshot())
			svc.counters.estimate(secs)
			svc.counters.dests.Range(func(_, v any) bool {
				v.(*destStats).estimate(secs)
				return true
			})
		}
	}
}

// sweep closes the TCP connections that have moved no byte for the idle
// timeout of their state, with one pass over the table every sweepEvery
// (netpark.Sweep) instead of a timer per connection.
func (s *Server) sweep() {
	defer s.wg.Done()
	netpark.Sweep(s.stopEst, s.sweepEvery, func(now int64, expired []*conn) []*conn {
		s.conns.each(func(c *conn) {
			if c.proto == "tcp" && now-c.last.Load() >= int64(c.svc.idleTimeout(c.state.Load())) {
				expired = append(expired, c)
			}
		})
		return expired
	}, func(c *conn) { c.closer() }) // outside the table's locks: closing removes from it
}

// sweepEvery is an eighth of the shortest TCP idle timeout of the current
// services (netpark.Sweep keeps it between 10ms and a second).
func (s *Server) sweepEvery() time.Duration {
	every := time.Second
	for _, svc := range *s.services.Load() {
		if svc.proto == "tcp" {
			every = min(every, svc.tcpIdle/8, svc.finIdle/8)
		}
	}
	return every
}

// Services returns every service of the current runtime with its
// backends and statistics.
func (s *Server) Services() []ServiceStatus {
	svcs := *s.services.Load()
	out := make([]ServiceStatus, 0, len(svcs))
	for _, svc := range svcs {
		st := ServiceStatus{
			Name:      svc.name,
			Protocol:  svc.proto,
			Listen:    svc.cfg.Listen,
			Pool:      svc.pool.Name(),
			Scheduler: svc.cfg.Scheduler,
			Forward:   "proxy",
			Stats:     svc.counters.snapshot(),
			Drops:     map[string]uint64{},
		}
		if st.Scheduler == "" {
			st.Scheduler = "pool"
		}
		if p := svc.cfg.Persistence; p != nil {
			st.Persistent = p.Timeout.D().Seconds()
		}
		for i, n := range dropNames {
			st.Drops[n] = svc.counters.drops[i].Load()
		}
		if st.Scheduler == "mh" || st.Scheduler == "maglev" {
			st.Fingerprint = maglevFingerprint(svc.pool.Snapshot().Ready)
		}
		for _, b := range svc.pool.Snapshot().All {
			d := svc.counters.dest(b)
			st.Backends = append(st.Backends, BackendStats{
				Name: b.Name, Address: b.Addr, Status: b.Status(),
				Weight: b.Weight, EffectiveWeight: b.EffectiveWeight,
				Overloaded: d.overloaded.Load(), Stats: d.snapshot(),
			})
		}
		out = append(out, st)
	}
	return append(out, s.kernel.status()...)
}

// Conns returns the connection table, oldest first, at most limit rows
// (all when limit ≤ 0): the proxy's connections, then the kernel's
// connection table of the dr and tunnel services, whose rows have no
// age, state or byte counts (the kernel keeps none).
func (s *Server) Conns(limit int) []ConnStatus {
	now := time.Now()
	var out []ConnStatus
	s.conns.each(func(c *conn) { out = append(out, c.status(now)) })
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if limit > 0 && len(out) >= limit {
		return out[:limit]
	}
	rest := 0
	if limit > 0 {
		rest = limit - len(out)
	}
	return append(out, s.kernel.flows(rest)...)
}

// Persistence returns the persistence templates of every service.
func (s *Server) Persistence() []PersistStatus {
	out := []PersistStatus{}
	for _, svc := range *s.services.Load() {
		if svc.persist != nil {
			out = append(out, svc.persist.list(svc.name)...)
		}
	}
	return out
}

// maglevFingerprint builds the Maglev table the mh and maglev schedulers
// build from ready (package balance's default size) and returns its
// fingerprint, or "" with nothing ready. It costs a table build, which
// is why only the status calls ask for it.
func maglevFingerprint(ready []*upstream.Backend) string {
	if len(ready) == 0 {
		return ""
	}
	sorted, table := balance.MaglevTable(ready, balance.DefaultTableSize)
	return fmt.Sprintf("%016x", balance.MaglevFingerprint(sorted, table))
}
