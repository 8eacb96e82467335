package l7

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/sockopt"
	"github.com/strata-lb/strata/internal/upstream"
)

// Reporter receives the outcome of each attempt for passive ejection.
type Reporter interface {
	Success(b *upstream.Backend)
	Failure(b *upstream.Backend)
}

// Options configure a Server. Zero values take the defaults given.
type Options struct {
	Logger *slog.Logger
	// Passive, when not nil, is told the outcome of every attempt.
	Passive Reporter

	// DialTimeout bounds connecting to a backend (default 5s).
	DialTimeout time.Duration
	// UpstreamTimeout bounds how long a backend may stay silent while a
	// request is sent or its response read (default 60s, nginx's
	// proxy_read_timeout). It is enforced coarsely: a stalled backend is
	// cut off after between half of it and all of it.
	UpstreamTimeout time.Duration
	// MaxIdlePerBackend is how many idle keep-alive connections are kept
	// per backend address (default 256; Go's Transport keeps 2, which
	// under load means a new connection per request).
	MaxIdlePerBackend int
	// UpstreamIdleTimeout closes backend connections idle this long
	// (default 50s, below the 60s or more most servers keep them).
	UpstreamIdleTimeout time.Duration
	// DrainTimeout bounds how long a listener removed by Apply waits for
	// its in-flight requests and its upgraded connections (default 30s).
	DrainTimeout time.Duration

	// Registry, when not nil, gets the role's Prometheus collectors,
	// registered once by NewServer (metrics.go).
	Registry prometheus.Registerer
	// UpstreamRootCAs verifies the certificates of backends of h2 pools
	// (default: the system roots).
	UpstreamRootCAs *x509.CertPool
	// CertPollInterval is how often certificate files are checked for
	// changes (default 5s).
	CertPollInterval time.Duration
}

// maxRequestHeader is the default bound on a request head; the client
// timeouts are in timeouts.go.
const maxRequestHeader = 64 << 10

// Server is the HTTP/1.1 load balancer: listeners, their routing tables and
// one upstream transport shared by all of them.
type Server struct {
	opts Options
	log  *slog.Logger
	tr   *transport
	// lameduck is set when the process starts to stop (lameduck.go).
	lameduck atomic.Bool

	mu        sync.Mutex // serialises Apply and Shutdown
	listeners map[string]*listener
	draining  sync.WaitGroup
	shutdown  atomic.Bool
	tunnels   tunnels
	metrics   *metrics                // nil without a Registry
	h2        atomic.Pointer[h2Pools] // nil when no pool speaks HTTP/2 (h2.go)
	logs      map[string]*accessLog   // open access logs by format and path
	// base parents the drains of removed listeners; Shutdown cancels it
	// when its own deadline passes so that nothing outlives it.
	base       context.Context
	cancelBase context.CancelFunc
}

// listener is one open socket, its server and its current table.
type listener struct {
	name  string
	ln    net.Listener
	conns *connLimiter // the bound on open connections (limits.go)
	srv   *h1Server    // serves the connections (h1server.go)
	table atomic.Pointer[routeTable]
	done  chan struct{} // closed when Serve has returned

	// Protocol and observability (listener.go): fixed shape, certificates,
	// PROXY policy, and the state Apply swaps with the table.
	shape   listenerShape
	certs   *certStore // nil without TLS
	proxy   atomic.Pointer[proxyPolicy]
	state   atomic.Pointer[listenerState]
	tunnels tunnels // this listener's upgraded connections (and h2c ones)
	// h2cGrace, when the listener takes h2c, is a server of no sockets
	// whose Shutdown sends GOAWAY on the connections upgraded to h2c.
	h2cGrace *http.Server
}

// NewServer makes a Server with no listeners; Apply opens them.
func NewServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 60 * time.Second
	}
	if opts.MaxIdlePerBackend <= 0 {
		opts.MaxIdlePerBackend = 256
	}
	if opts.UpstreamIdleTimeout <= 0 {
		opts.UpstreamIdleTimeout = 50 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.CertPollInterval <= 0 {
		opts.CertPollInterval = 5 * time.Second
	}
	base, cancel := context.WithCancel(context.Background())
	var m *metrics
	if opts.Registry != nil {
		m = newMetrics(opts.Registry)
	}
	s := &Server{
		metrics:    m,
		logs:       map[string]*accessLog{},
		base:       base,
		cancelBase: cancel,
		opts:       opts,
		log:        opts.Logger.With("role", "l7"),
		tr:         newTransport(&opts),
		listeners:  map[string]*listener{},
	}
	if opts.Registry != nil {
		opts.Registry.MustRegister(limitsCollector{s}) // limits.go
		m.retainAddrs = s.tr.retain
	}
	return s
}

// Apply builds routing tables from cfg and pools (pools by name),
// validates, then swaps them in atomically; it opens listeners that are new
// and gracefully closes listeners no longer configured. In-flight requests
// and open connections on kept listeners are unaffected. A failed Apply
// changes nothing. Listeners are identified by their listen address.
func (s *Server) Apply(cfg *config.L7, pools map[string]*upstream.Pool) error {
	return s.ApplyWith(cfg, pools, nil)
}

// ApplyWith is Apply with the pools' protocols toward their backends
// (pool name → http1, h2 or h2c; absent means http1).
func (s *Server) ApplyWith(cfg *config.L7, pools map[string]*upstream.Pool, protocols map[string]string) error {
	if cfg == nil {
		cfg = &config.L7{}
	}
	tables := make(map[string]*routeTable, len(cfg.Listeners))
	names := make(map[string]string, len(cfg.Listeners))
	plans := make(map[string]*listenerPlan, len(cfg.Listeners))
	s.mu.Lock()
	logs := &logSet{old: s.logs, next: map[string]*accessLog{}}
	s.mu.Unlock()
	applied := false
	defer func() {
		if !applied {
			logs.abandon()
		}
	}()
	for i := range cfg.Listeners {
		lc := &cfg.Listeners[i]
		if lc.Listen == "" {
			return fmt.Errorf("applying l7 config: listener %d (%q): empty listen address", i+1, lc.Name)
		}
		if _, dup := tables[lc.Listen]; dup {
			return fmt.Errorf("applying l7 config: listen address %s used by two listeners", lc.Listen)
		}
		t, err := buildTableWith(lc, pools, buildOptions{log: s.log})
		if err != nil {
			return fmt.Errorf("applying l7 config: %w", err)
		}
		tables[lc.Listen] = t
		names[lc.Listen] = listenerName(lc)
		if plans[lc.Listen], err = s.planListener(lc, logs); err != nil {
			return fmt.Errorf("applying l7 config: %w", err)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return errors.New("applying l7 config: server is shut down")
	}
	// A configured address names a running listener when it is the same
	// text, or when it is the address that listener is bound to (a
	// listener opened on port 0, then configured by its real port).
	kept := make(map[string]*listener, len(tables))
	claimed := map[*listener]bool{}
	for addr := range tables {
		if l, ok := s.listeners[addr]; ok {
			kept[addr], claimed[l] = l, true
		}
	}
	for addr := range tables {
		if kept[addr] != nil {
			continue
		}
		for _, l := range s.listeners {
			if !claimed[l] && l.ln.Addr().String() == addr {
				kept[addr], claimed[l] = l, true
				break
			}
		}
	}
	for addr, l := range kept {
		if sh := plans[addr].shape; sh != l.shape {
			return fmt.Errorf("applying l7 config: listener %s: changing (%s) to (%s) needs a new listen address or a restart", addr, l.shape, sh)
		}
		if l.certs != nil && plans[addr].cfg.TLS != nil {
			// Certificates are read afresh on every reload; a set that
			// does not load fails the reload and keeps the old one.
			if _, err := loadCertSet(plans[addr].cfg.TLS.Certificates); err != nil {
				return fmt.Errorf("applying l7 config: listener %s: %w", addr, err)
			}
		}
	}
	// Open every new socket before touching anything, so that a port in
	// use fails the whole Apply and leaves the running config alone.
	opened := map[string]*listener{}
	abandon := func() {
		for _, l := range opened {
			l.ln.Close()
			if l.certs != nil {
				l.certs.close()
			}
		}
	}
	for addr := range tables {
		if kept[addr] != nil {
			continue
		}
		// clientListenConfig binds with FREEBIND: a VIP that keepalived has
		// not moved here yet is listened on all the same.
		ln, err := clientListenConfig.Listen(context.Background(), "tcp", addr)
		if err != nil {
			abandon()
			return fmt.Errorf("applying l7 config: listening on %s: %w", addr, err)
		}
		l := &listener{name: names[addr], done: make(chan struct{}), shape: plans[addr].shape}
		l.conns = limitConns(ln, l.maxConns) // limits.go
		l.ln = l.conns
		opened[addr] = l
		if l.ln, err = s.wrapListener(l, plans[addr]); err != nil {
			ln.Close()
			abandon()
			return fmt.Errorf("applying l7 config: %w", err)
		}
	}
	for addr, l := range kept {
		if l.certs != nil {
			l.certs.load(plans[addr].cfg.TLS.Certificates) // checked above
		}
		if p := plans[addr].proxy; p != nil {
			l.proxy.Store(p)
		}
	}
	for addr, t := range tables {
		s.resolveRouteMetrics(names[addr], t)
	}
	h2next, h2unused := s.buildH2Pools(protocols)
	if h2next == nil {
		s.h2.Store(nil)
	} else {
		s.h2.Store(&h2next)
	}
	closeH2(h2unused)
	if s.metrics != nil {
		s.metrics.setPools(pools) // drops the series of backends gone with old pools
	}
	applied = true
	for k, a := range s.logs {
		if logs.next[k] != a {
			defer a.close() // after the new state is in place
		}
	}
	s.logs = logs.next

	next := make(map[string]*listener, len(tables))
	for addr, l := range kept {
		l.name = names[addr]
		l.state.Store(plans[addr].state)
		l.table.Store(tables[addr])
		l.conns.wake() // max_conns may have changed
		next[addr] = l
	}
	for addr, l := range opened {
		l.state.Store(plans[addr].state)
		l.table.Store(tables[addr])
		l.srv = s.newClientServer(l) // listener.go
		next[addr] = l
		go s.serve(l)
		s.log.Info("listening", "listener", l.name, "addr", l.ln.Addr().String())
		if sockopt.Nonlocal(addr) {
			s.log.Warn("no interface holds this address yet: the listener serves once it is added (IP_FREEBIND)", "listener", l.name, "addr", addr)
		}
	}
	for _, l := range s.listeners {
		if claimed[l] {
			continue
		}
		s.draining.Add(1)
		go func() {
			defer s.draining.Done()
			ctx, cancel := context.WithTimeout(s.base, s.opts.DrainTimeout)
			defer cancel()
			s.closeListener(ctx, l)
			s.log.Info("closed listener", "listener", l.name, "addr", l.ln.Addr().String())
		}()
	}
	s.listeners = next
	s.retainRouteMetrics(tables, names) // listener.go
	return nil
}

func (s *Server) serve(l *listener) {
	defer close(l.done)
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("serving", "listener", l.name, "err", err)
	}
}

// closeListener stops accepting, waits for in-flight requests and upgraded
// connections until ctx ends, then cuts whatever is left.
func (s *Server) closeListener(ctx context.Context, l *listener) error {
	err := l.srv.Shutdown(ctx)
	if err != nil {
		l.srv.Close()
	}
	<-l.done
	if l.certs != nil {
		l.certs.close()
	}
	tunnelsDone := make(chan struct{})
	go func() { l.tunnels.wg.Wait(); close(tunnelsDone) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if l.h2cGrace != nil {
			// It has no listener or connection of its own: this returns
			// at once, having told the upgraded connections to finish.
			// Again on every tick: x/net tells only the connections
			// registered so far, and one whose upgrade was under way
			// registers after.
			l.h2cGrace.Shutdown(ctx)
		}
		select {
		case <-tunnelsDone:
			return err
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			l.tunnels.closeAll()
			<-tunnelsDone
			return err
		case <-tick.C:
		}
	}
}

// Addrs returns the bound addresses of the listeners, sorted by nothing in
// particular; tests that listen on :0 read their ports here.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, l.ln.Addr())
	}
	return out
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// closes idle keep-alive connections on both sides. Requests still running
// when ctx ends are cut off and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown.Store(true)
	ls := make([]*listener, 0, len(s.listeners))
	for addr, l := range s.listeners {
		ls = append(ls, l)
		delete(s.listeners, addr)
	}
	s.mu.Unlock()

	errs := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errs <- s.closeListener(ctx, l) }()
	}
	var first error
	for range ls {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	drained := make(chan struct{})
	go func() { s.draining.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		if first == nil {
			first = ctx.Err()
		}
		s.cancelBase()
		<-drained
	}
	s.cancelBase()
	// Upgraded connections finish on their own until ctx ends.
	tunnelsDone := make(chan struct{})
	go func() { s.tunnels.wg.Wait(); close(tunnelsDone) }()
	select {
	case <-tunnelsDone:
	case <-ctx.Done():
		if first == nil {
			first = ctx.Err()
		}
		s.tunnels.closeAll()
		<-tunnelsDone
	}
	s.tr.close()
	s.mu.Lock()
	for _, a := range s.logs {
		a.close()
	}
	s.logs = map[string]*accessLog{}
	s.mu.Unlock()
	if p := s.h2.Load(); p != nil {
		for _, u := range *p {
			u.tr.CloseIdleConnections()
		}
	}
	return first
}
