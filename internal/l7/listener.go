package l7

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

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
	set := func(g *hostGroup) {
		if g == nil {
			return
		}
		for _, rt := range g.routes {
			rt.metrics = s.metrics.forRoute(listener, rt.name)
		}
	}
	for _, g := range t.exact {
		set(g)
	}
	for _, w := range t.wild {
		set(w.group)
	}
	set(t.any)
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

// configureHTTP sets the protocols of l's http.Server and wraps its
// handler with the observer.
func (s *Server) configureHTTP(srv *http.Server, l *listener) {
	sh := l.shape
	var protos http.Protocols
	protos.SetHTTP1(true)
	if sh.tls && sh.http2 {
		protos.SetHTTP2(true)
	}
	if sh.h2c {
		protos.SetUnencryptedHTTP2(true) // prior knowledge
	}
	srv.Protocols = &protos
	if sh.tls && sh.http2 || sh.h2c {
		srv.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 1 << 20, MaxReceiveBufferPerConnection: 4 << 20}
	}
	o := observer{s: s, ln: l, next: srv.Handler}
	if sh.h2c {
		// net/http serves prior knowledge itself but not the Upgrade
		// dance of RFC 7540 §3.2, which h2c still does; the body of such
		// a first request is bounded by MaxBytesHandler.
		inner := o
		inner.upgraded = true
		h2s := &http2.Server{}
		// ConfigureServer on a server of its own only gives h2s the state
		// that lets Shutdown of that server send GOAWAY on the connections
		// h2s serves; closeListener uses it for upgraded connections.
		grace := &http.Server{}
		if err := http2.ConfigureServer(grace, h2s); err == nil {
			l.h2cGrace = grace
		}
		o.h2c = http.MaxBytesHandler(h2c.NewHandler(inner, h2s), 1<<20) //nolint:staticcheck // the Upgrade path only
	}
	srv.Handler = o
	srv.BaseContext = func(net.Listener) context.Context {
		return context.WithValue(context.Background(), listenerKey{}, l)
	}
	if m := s.metrics; m != nil {
		active := m.connsActive.WithLabelValues(l.name)
		total := m.connsTotal.WithLabelValues(l.name)
		srv.ConnState = func(_ net.Conn, cs http.ConnState) {
			switch cs {
			case http.StateNew:
				active.Inc()
				total.Inc()
			case http.StateClosed, http.StateHijacked:
				active.Dec()
			}
		}
	}
}

// newH1Server makes the server of a listener that speaks only HTTP/1.x,
// with the same observer, request context and connection metrics as
// configureHTTP gives net/http's.
func (s *Server) newH1Server(l *listener) *h1Server {
	h := &h1Server{
		handler:   observer{s: s, ln: l, next: handler{s: s, ln: l}},
		ctx:       context.WithValue(context.Background(), listenerKey{}, l),
		maxHeader: l.table.Load().maxHeaderBytes, // fixed while the listener is open
		log:       s.log.With("listener", l.name),
	}
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

// listenerKey finds a request's listener in its context (for tunnels).
type listenerKey struct{}

// listenerOf returns the listener that accepted r, or nil.
func listenerOf(r *http.Request) *listener {
	l, _ := r.Context().Value(listenerKey{}).(*listener)
	return l
}
