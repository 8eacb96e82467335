package admin

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-lb/strata/internal/graceful"
	"github.com/strata-lb/strata/internal/upstream"
)

// Source is what the admin API reads: the current runtime's pools. The
// runtime swaps on reload, so it is asked on every call.
type Source interface {
	Pools() []*upstream.Pool
	// HealthDetail returns per-backend active-check detail (last result,
	// error, counts) as a JSON-marshalable value, or nil.
	HealthDetail(pool, backend string) any
}

// RouteSource is an optional interface of a Source whose roles serve
// read-only endpoints of their own, such as l4's connection table. The
// routes are fixed when the Server is built, before the roles run, so each
// handler finds its role at request time.
type RouteSource interface {
	AdminRoutes() []Route
}

// Route is one endpoint a role adds to the admin API: a read (GET) or,
// with Method POST, a write, which the listener guards as its own writes
// (token or loopback, no forwarded requests, no cross-origin browsers).
type Route struct {
	Path    string
	Handler http.HandlerFunc
	// Method is GET when empty, or POST.
	Method string
}

// StatusSource is an optional interface of a Source that has a BGP
// speaker: its state is the "bgp" section of /api/v1/status. BGPStatus
// returns nil when there is none.
type StatusSource interface {
	BGPStatus() any
}

// Options configure a Server.
type Options struct {
	// Listen is host:port.
	Listen string
	// Token is the bearer token for writes; "" allows writes only when
	// Listen is a loopback address.
	Token string
	// Pprof serves /debug/pprof/ when true.
	Pprof bool
	// Source yields the pools; required.
	Source Source
	// Registry is where roles register their own collectors; the admin
	// listener adds its pool collector and the Go and process collectors,
	// and serves the whole registry on /metrics. New makes one when nil.
	Registry *prometheus.Registry
	// Version is reported by /api/v1/status.
	Version string
	// Logger receives a line for every write; slog.Default() when nil.
	Logger *slog.Logger
	// Relayed reports whether a peer address is the local end of one of
	// this process's own connections to a backend (an l4 service
	// relaying a client's bytes). Writes from such a peer are refused:
	// they come from whoever reached the data plane. Nil: none is.
	Relayed func(peer netip.AddrPort) bool
}

// Timeouts and limits of the listener. The admin API answers from memory,
// so anything slower than this is a stuck or hostile client. CPU profiles
// and traces run longer than writeTimeout on purpose: net/http/pprof
// extends the write deadline by the requested duration itself, reading the
// server's WriteTimeout, which is why the server must set one.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	maxBodyBytes      = 64 << 10
)

// Server is the admin listener.
type Server struct {
	opts     Options
	log      *slog.Logger
	started  time.Time
	loopback bool     // Listen names a loopback address
	token    [32]byte // SHA-256 of Options.Token, so comparison time does not depend on its length
	handler  http.Handler
	srv      *http.Server

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	done   chan struct{} // closed when Serve returns
}

// New builds a Server and registers its collectors; it does not listen
// until Start. Two Servers may share a Registry (a reload that moves the
// listener starts the new one before it stops the old one): they share
// one pool collector, which reads from the Source of the newest Server.
func New(opts Options) (*Server, error) {
	if opts.Source == nil {
		return nil, errors.New("admin: no source of pools")
	}
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin: parsing listen address %q: %w", opts.Listen, err)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		started:  time.Now(),
		loopback: isLoopbackHost(host),
		done:     make(chan struct{}),
	}
	if opts.Token != "" {
		s.token = sha256.Sum256([]byte(opts.Token))
	} else if !s.loopback {
		s.log.Warn("admin writes are disabled: the listener is not on a loopback address and no token is set", "listen", opts.Listen)
	}
	if err := registerCollectors(opts.Registry, opts.Source); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	s.handler = s.routes()
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// A dashboard's browser preconnects; Shutdown need not wait 5 s for
	// those connections.
	graceful.CloseUnusedOnShutdown(s.srv)
	return s, nil
}

// registerCollectors adds the pool, Go and process collectors to reg,
// adopting the ones a previous Server left there.
func registerCollectors(reg *prometheus.Registry, src Source) error {
	pc := newPoolCollector(src)
	if err := reg.Register(pc); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("registering pool collector: %w", err)
		}
		old, ok := are.ExistingCollector.(*poolCollector)
		if !ok {
			return fmt.Errorf("registering pool collector: metric names taken by another collector: %w", err)
		}
		old.setSource(src)
	}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		// A role or an earlier Server may have registered these already;
		// one copy serves everyone.
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return fmt.Errorf("registering runtime collector: %w", err)
		}
	}
	return nil
}

// isLoopbackHost reports whether a listen host binds only to loopback.
// Names other than localhost are not resolved: a name that resolves to a
// public address today must not count as loopback, so only literals do.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start binds the listener and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("admin: server is shut down")
	}
	if s.ln != nil {
		return errors.New("admin: already started")
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("admin: listening on %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// Addr returns the bound address, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting connections and waits, until ctx ends, for
// requests in flight (a CPU profile may take its full duration).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	started := s.ln != nil
	s.mu.Unlock()
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin: shutting down: %w", err)
	}
	if started {
		select {
		case <-s.done:
		case <-ctx.Done():
			return fmt.Errorf("admin: shutting down: %w", ctx.Err())
		}
	}
	return nil
}

// Handler returns the admin API as an http.Handler, for tests and for
// embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// routes builds the mux. Every path gets a fallback without a method that
// answers 405 in JSON with an Allow header, and "/" answers 404 in JSON,
// so that clients see one error format everywhere.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	route := func(path string, byMethod map[string]http.Handler) {
		allow := make([]string, 0, len(byMethod)+1)
		for m, h := range byMethod {
			mux.Handle(m+" "+path, h)
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		slices.Sort(allow)
		allowHeader := strings.Join(allow, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allowHeader)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allowHeader))
		})
	}
	get := func(h http.HandlerFunc) map[string]http.Handler {
		return map[string]http.Handler{http.MethodGet: s.read(h)}
	}

	// healthz says only that the process answers, so it is open to any
	// Host: health checkers name the listener as they like.
	route("/healthz", map[string]http.Handler{http.MethodGet: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})})
	route("/api/v1/status", get(s.handleStatus))
	route("/api/v1/pools/{pool}", get(s.handlePool))
	route("/api/v1/pools/{pool}/backends/{backend}", map[string]http.Handler{
		http.MethodGet: s.read(http.HandlerFunc(s.handleBackend)),
		http.MethodPut: s.write(s.handleUpdate),
	})
	route("/api/v1/pools/{pool}/backends/{backend}/drain", map[string]http.Handler{
		http.MethodPost: s.write(s.setStateHandler("drain", upstream.StateDraining)),
	})
	route("/api/v1/pools/{pool}/backends/{backend}/undrain", map[string]http.Handler{
		http.MethodPost: s.write(s.setStateHandler("undrain", upstream.StateUp)),
	})
	route("/api/v1/chain", get(s.handleChain))
	// The dashboard (dashboard.go): the page at / only, so that every
	// other unknown path still answers 404 in JSON.
	index, assets := dashboardHandlers()
	route("/{$}", get(index))
	route("/dashboard/", get(assets))
	route("/metrics", map[string]http.Handler{http.MethodGet: s.read(promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))})
	if rs, ok := s.opts.Source.(RouteSource); ok {
		for _, r := range rs.AdminRoutes() {
			if r.Method == http.MethodPost {
				route(r.Path, map[string]http.Handler{http.MethodPost: s.write(r.Handler)})
			} else {
				route(r.Path, get(r.Handler))
			}
		}
	}
	if s.opts.Pprof {
		// One handler for the subtree: the mux refuses a method-less
		// fallback for /debug/pprof/cmdline next to "GET /debug/pprof/".
		mux.Handle("/debug/pprof/", s.read(http.HandlerFunc(s.pprofGuard)))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
	})
	return mux
}

// servePprof dispatches the pprof subtree the way net/http/pprof's own
// registration does, with this package's method checks and errors.
func servePprof(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/")
	allow := []string{http.MethodGet, http.MethodHead}
	if name == "symbol" {
		allow = append(allow, http.MethodPost)
	}
	if !slices.Contains(allow, r.Method) {
		a := strings.Join(allow, ", ")
		w.Header().Set("Allow", a)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, a))
		return
	}
	switch name {
	case "cmdline":
		serveCmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		// The index, and every named profile (heap, goroutine …).
		pprof.Index(w, r)
	}
}

// errorBody is the shape of every error the API returns.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// writeJSON writes v indented, because the main client is a person with
// curl, and a scrape-sized status is small enough not to care.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: fmt.Sprintf("encoding response: %v", err)})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
