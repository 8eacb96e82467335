package l7

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/strata-lb/strata/internal/upstream"
)

// HTTP/2 toward backends. Pools whose protocol is h2 or h2c are served by
// golang.org/x/net/http2's Transport: one multiplexed connection per
// backend carries many requests, and response trailers (gRPC's status)
// arrive as trailers. Pools speaking HTTP/1.1 keep the lean path of
// proxy.go; a server without h2 pools never looks at this file's state.

// h2Upstream is the transport of one pool speaking HTTP/2.
type h2Upstream struct {
	protocol string // h2 or h2c
	scheme   string
	tr       *http2.Transport
}

// errDial marks a failure to connect, which is safe to retry anywhere.
type errDial struct{ err error }

func (e errDial) Error() string { return "connecting to backend: " + e.err.Error() }
func (e errDial) Unwrap() error { return e.err }

func (s *Server) newH2Upstream(protocol string) *h2Upstream {
	d := s.tr.dialer
	u := &h2Upstream{protocol: protocol, scheme: "http"}
	u.tr = &http2.Transport{
		// Pings find a dead connection that TCP would take minutes to
		// notice; a multiplexed connection carries many requests.
		ReadIdleTimeout: 30 * time.Second,
		PingTimeout:     10 * time.Second,
		IdleConnTimeout: s.opts.UpstreamIdleTimeout,
	}
	if protocol == "h2c" {
		u.tr.AllowHTTP = true
		u.tr.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, errDial{err}
			}
			return c, nil
		}
		return u
	}
	u.scheme = "https"
	u.tr.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		td := tls.Dialer{NetDialer: &d, Config: &tls.Config{
			ServerName: host,
			NextProtos: []string{"h2"},
			RootCAs:    s.opts.UpstreamRootCAs,
			MinVersion: tls.VersionTLS12,
		}}
		c, err := td.DialContext(ctx, network, addr)
		if err != nil {
			return nil, errDial{err}
		}
		if p := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "h2" {
			c.Close()
			return nil, errDial{errors.New("backend did not agree to HTTP/2 by ALPN (got " + p + ")")}
		}
		return c, nil
	}
	return u
}

// h2Pools maps pool names to their HTTP/2 transports; nil when no pool
// speaks HTTP/2.
type h2Pools map[string]*h2Upstream

// buildH2Pools makes the transports for protocols (pool name → protocol),
// keeping the existing transport, and its connections, of a pool whose
// protocol did not change.
func (s *Server) buildH2Pools(protocols map[string]string) (next h2Pools, unused []*h2Upstream) {
	var old h2Pools
	if p := s.h2.Load(); p != nil {
		old = *p
	}
	for name, proto := range protocols {
		if proto != "h2" && proto != "h2c" {
			continue
		}
		if next == nil {
			next = h2Pools{}
		}
		if u := old[name]; u != nil && u.protocol == proto {
			next[name] = u
			continue
		}
		next[name] = s.newH2Upstream(proto)
	}
	for name, u := range old {
		if next[name] != u {
			unused = append(unused, u)
		}
	}
	return next, unused
}

// h2For returns the HTTP/2 transport of b's pool, or nil for HTTP/1.1.
func (s *Server) h2For(b *upstream.Backend) *h2Upstream {
	if p := s.h2.Load(); p != nil {
		return (*p)[b.Pool]
	}
	return nil
}

// forwardH2 is forward for a backend spoken to over HTTP/2. It returns the
// same outcomes, so retries, timeouts and passive ejection work alike.
func (s *Server) forwardH2(u *h2Upstream, w http.ResponseWriter, r *http.Request, b *upstream.Backend, ip string, x *exchange, retryStatus bool) (outcome, error) {
	b.Active.Add(1)
	defer b.Active.Add(-1)
	b.Requests.Add(1)

	ioTimeout, firstByte := s.tr.ioTimeout, time.Duration(0)
	if rt := x.rt; rt != nil {
		if rt.timeouts.idle > 0 {
			ioTimeout = rt.timeouts.idle
		}
		firstByte = rt.timeouts.firstByte
	}
	if firstByte <= 0 {
		firstByte = ioTimeout
	}
	out := outgoingH2(r, b, ip, u.scheme)
	if x.replay != nil {
		x.replay.rewind()
		out.Body = x.replay
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The wait for the response head is bounded; the body, a gRPC stream
	// perhaps, may last as long as it keeps moving.
	var headTimedOut bool
	var mu sync.Mutex
	timer := time.AfterFunc(firstByte, func() {
		mu.Lock()
		headTimedOut = true
		mu.Unlock()
		cancel()
	})
	resp, err := u.tr.RoundTrip(out.WithContext(ctx))
	timer.Stop()
	if err != nil {
		var de errDial
		if errors.As(err, &de) {
			s.fail(b)
			return dialFailed, err
		}
		if errors.Is(err, errClientBody) || r.Context().Err() != nil {
			return clientFailed, err
		}
		s.fail(b)
		mu.Lock()
		to := headTimedOut
		mu.Unlock()
		if to {
			return timedOut, err
		}
		return sendFailed, err
	}
	defer resp.Body.Close()
	if retryStatus && x.rt.retry.statuses.has(resp.StatusCode) {
		s.report(b, x.rt, resp.StatusCode)
		return statusFailed, nil
	}
	h := w.Header()
	connVals := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if isHopByHop(k) && k != "Content-Length" || (connVals != nil && headerHasToken(connVals, k)) {
			continue
		}
		h[k] = vv
	}
	if rt := x.rt; rt != nil {
		if !rt.respOps.empty() {
			rt.respOps.apply(h)
		}
		if x.setCookie != nil {
			h["Set-Cookie"] = append(h["Set-Cookie"], x.setCookie...)
		}
	}
	// Trailers the backend announced are announced to the client too;
	// others (an HTTP/2 backend need not announce) go out through
	// TrailerPrefix, which net/http sends as trailers on any protocol.
	announced := len(resp.Trailer)
	if announced > 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc") {
		// Trailers may follow; an HTTP/1.1 client gets them only in a
		// chunked body, so the length is not passed on.
		delete(h, "Content-Length")
	}
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	w.WriteHeader(resp.StatusCode)
	buf := x.copyBuf()
	flusher, _ := w.(http.Flusher)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				s.report(b, x.rt, resp.StatusCode)
				return done, nil // the client left; the backend is fine
			}
			if flusher != nil {
				flusher.Flush() // gRPC streams and events must not wait
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if r.Context().Err() != nil {
				return done, nil
			}
			s.fail(b)
			return relayFailed, rerr
		}
	}
	for k, vv := range resp.Trailer {
		if announced > 0 && headerHasToken(h["Trailer"], k) {
			h[k] = vv
		} else {
			h[http.TrailerPrefix+k] = vv
		}
	}
	s.report(b, x.rt, resp.StatusCode)
	return done, nil
}

// outgoingH2 builds the request sent to an HTTP/2 backend: hop-by-hop
// fields dropped (but "TE: trailers", which gRPC needs, kept) and
// X-Forwarded-For extended with the client address.
func outgoingH2(r *http.Request, b *upstream.Backend, ip, scheme string) *http.Request {
	hdr := make(http.Header, len(r.Header)+2)
	connVals := r.Header["Connection"]
	for k, vv := range r.Header {
		if isHopByHop(k) || (connVals != nil && headerHasToken(connVals, k)) {
			continue
		}
		hdr[k] = vv
	}
	if v := hdr["X-Forwarded-Host"]; v != nil {
		// The observer's value lives in its pooled recorder, which the
		// next request reuses, while the HTTP/2 transport may still be
		// encoding this request's headers on its own goroutine.
		hdr["X-Forwarded-Host"] = slices.Clone(v)
	}
	if headerHasToken(r.Header["Te"], "trailers") {
		hdr["Te"] = []string{"trailers"}
	}
	xff := ip
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + ip
	}
	hdr["X-Forwarded-For"] = []string{xff}
	out := &http.Request{
		Method: r.Method,
		URL: &url.URL{Scheme: scheme, Host: b.Addr, Path: r.URL.Path, RawPath: r.URL.RawPath,
			RawQuery: r.URL.RawQuery},
		Proto: "HTTP/2.0", ProtoMajor: 2,
		Header:        hdr,
		Host:          r.Host,
		ContentLength: r.ContentLength,
		Trailer:       r.Trailer,
	}
	if r.Body != nil && r.Body != http.NoBody {
		out.Body = clientBody{r.Body}
	} else {
		out.ContentLength = 0
	}
	return out
}

// clientBody marks read errors of the client's body, so that they are not
// blamed on the backend.
type clientBody struct{ io.ReadCloser }

func (c clientBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = clientBodyError{err}
	}
	return n, err
}

// closeIdle closes the idle connections of transports no longer used;
// requests in flight on them finish.
func closeH2(us []*h2Upstream) {
	for _, u := range us {
		u.tr.CloseIdleConnections()
	}
}
