package l7

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/strata-lb/strata/internal/config"
)

// listenerShape is what a socket is fixed to for its life: whether it
// speaks TLS, which protocols it offers and whether it reads PROXY
// headers. Apply refuses to change it on a running listener, since the
// connections it already holds were accepted under the old one.
type listenerShape struct {
	tls, http2, h2c, proxy bool
}

func shapeOf(lc *config.Listener) listenerShape {
	return listenerShape{tls: lc.TLS != nil, http2: lc.HTTP2Enabled(), h2c: lc.H2C, proxy: lc.ProxyProtocol != nil}
}

func (sh listenerShape) String() string {
	return fmt.Sprintf("tls %t, http2 %t, h2c %t, proxy_protocol %t", sh.tls, sh.http2 && sh.tls, sh.h2c, sh.proxy)
}

// listenerPlan is everything Apply prepares for one configured listener
// before it changes anything.
type listenerPlan struct {
	cfg   *config.Listener
	shape listenerShape
	state *listenerState
	proxy *proxyPolicy
}

// planListener checks and prepares lc's protocol settings. logs are the
// access logs the new generation uses, opened (or reused) here.
func (s *Server) planListener(lc *config.Listener, logs *logSet) (*listenerPlan, error) {
	p := &listenerPlan{cfg: lc, shape: shapeOf(lc)}
	trust, err := parseTrustList(lc.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("listener %q: trusted_proxies: %w", listenerName(lc), err)
	}
	st := &listenerState{name: listenerName(lc), trust: trust}
	if s.metrics != nil {
		st.unrouted = s.metrics.forRoute(st.name, "")
	}
	if lc.AccessLog != nil {
		if st.log, err = logs.open(lc.AccessLog.Path, lc.AccessLog.Format); err != nil {
			return nil, fmt.Errorf("listener %q: %w", st.name, err)
		}
	}
	p.state = st
	if lc.ProxyProtocol != nil {
		if p.proxy, err = newProxyPolicy(lc.ProxyProtocol); err != nil {
			return nil, fmt.Errorf("listener %q: proxy_protocol: %w", st.name, err)
		}
	}
	return p, nil
}

// logSet shares one accessLog among the listeners naming the same file and
// format, and across reloads.
type logSet struct {
	old, next map[string]*accessLog
}

func (ls *logSet) open(path, format string) (*accessLog, error) {
	key := format + "\x00" + path
	if a := ls.next[key]; a != nil {
		return a, nil
	}
	a := ls.old[key]
	if a == nil {
		var err error
		if a, err = openAccessLog(path, format); err != nil {
			return nil, err
		}
	}
	ls.next[key] = a
	return a, nil
}

// abandon closes the logs opened for a plan that is not applied.
func (ls *logSet) abandon() {
	for k, a := range ls.next {
		if ls.old[k] != a {
			a.close()
		}
	}
}

// resolveRouteMetrics gives every route of t its pre-resolved series.
func (s *Server) resolveRouteMetrics(listener string, t *routeTable) {
	if s.metrics == nil || t == nil {
		return
	}
	t.eachRoute(func(rt *route) { rt.metrics = s.metrics.forRoute(listener, rt.name) })
}

// retainRouteMetrics drops the series of routes the tables (by listen
// address, with names the listeners' names) no longer have.
func (s *Server) retainRouteMetrics(tables map[string]*routeTable, names map[string]string) {
	if s.metrics == nil {
		return
	}
	keep := map[routeKey]struct{}{}
	for addr, t := range tables {
		name := names[addr]
		keep[routeKey{name, ""}] = struct{}{} // requests no route matched
		t.eachRoute(func(rt *route) { keep[routeKey{name, rt.name}] = struct{}{} })
	}
	s.metrics.retainRoutes(keep)
}

// eachRoute calls fn with every route of t.
func (t *routeTable) eachRoute(fn func(*route)) {
	if t == nil {
		return
	}
	each := func(g *hostGroup) {
		if g == nil {
			return
		}
		for _, rt := range g.routes {
			fn(rt)
		}
	}
	for _, g := range t.exact {
		each(g)
	}
	for _, w := range t.wild {
		each(w.group)
	}
	each(t.any)
}

// wrapListener adds PROXY protocol and TLS to a freshly opened socket, in
// the order they arrive on the wire.
func (s *Server) wrapListener(l *listener, p *listenerPlan) (net.Listener, error) {
	ln := l.ln
	if p.proxy != nil {
		l.proxy.Store(p.proxy)
		ln = proxyListener{Listener: ln, policy: &l.proxy}
	}
	if p.cfg.TLS != nil {
		st, err := newCertStore(p.cfg.TLS.Certificates, s.opts.CertPollInterval, s.log.With("listener", p.state.name))
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", p.state.name, err)
		}
		l.certs = st
		ln = tls.NewListener(ln, serverTLSConfig(st, p.shape.http2))
	}
	return ln, nil
}

// newClientServer makes the server of l's client connections: HTTP/1.x
// served by h1Server, HTTP/2 (ALPN h2 on TLS, h2c by prior knowledge or
// Upgrade) handed to x/net/http2, all through one observer wrapping the
// handler.
func (s *Server) newClientServer(l *listener) *h1Server {
	sh := l.shape
	maxHeader := l.table.Load().maxHeaderBytes // fixed while the listener is open
	idle := l.table.Load().client.idle         // HTTP/2's, likewise
	o := observer{s: s, ln: l, next: handler{s: s, ln: l}}
	h := &h1Server{
		ctx:       context.WithValue(context.Background(), listenerKey{}, l),
		maxHeader: maxHeader,
		log:       s.log.With("listener", l.name),
		timeouts:  func() *clientTimeouts { return &l.table.Load().client },
	}
	if sh.tls && sh.http2 || sh.h2c {
		h.h2 = newH2Server(idle)
		// ServeConn takes its limits and logger from a base server, and
		// http2.ConfigureServer lets that server's Shutdown send GOAWAY
		// on every connection h.h2 serves (h1Server.Shutdown calls it).
		h.h2Base = &http.Server{
			MaxHeaderBytes: maxHeader,
			IdleTimeout:    idle,
			ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		if err := http2.ConfigureServer(h.h2Base, h.h2); err != nil {
			s.log.Error("configuring HTTP/2", "listener", l.name, "err", err)
			h.h2 = nil
		}
		h.h2c = sh.h2c
	}
	if sh.h2c {
		// The Upgrade dance of RFC 7540 §3.2, which clients of h2c still
		// do, is x/net's h2c handler's; the body of such a first request
		// is bounded by MaxBytesHandler.
		inner := o
		inner.upgraded = true
		h2s := newH2Server(idle)
		// ConfigureServer on a server of its own only gives h2s the state
		// that lets Shutdown of that server send GOAWAY on the connections
		// h2s serves; closeListener uses it for upgraded connections.
		grace := &http.Server{}
		if err := http2.ConfigureServer(grace, h2s); err == nil {
			l.h2cGrace = grace
		}
		o.h2c = http.MaxBytesHandler(h2c.NewHandler(inner, h2s), 1<<20) //nolint:staticcheck // the Upgrade path only
	}
	h.handler = o
	if m := s.metrics; m != nil {
		active := m.connsActive.WithLabelValues(l.name)
		total := m.connsTotal.WithLabelValues(l.name)
		h.onConn = func(open bool) {
			if open {
				active.Inc()
				total.Inc()
			} else {
				active.Dec()
			}
		}
	}
	return h
}

// newH2Server is the HTTP/2 server of client connections, with receive
// windows large enough for uploads at speed.
func newH2Server(idle time.Duration) *http2.Server {
	return &http2.Server{
		IdleTimeout:                  idle,
		MaxUploadBufferPerStream:     1 << 20,
		MaxUploadBufferPerConnection: 4 << 20,
	}
}

// listenerKey finds a request's listener in its context (for tunnels).
type listenerKey struct{}

// listenerOf returns the listener that accepted r, or nil.
func listenerOf(r *http.Request) *listener {
	l, _ := r.Context().Value(listenerKey{}).(*listener)
	return l
}
