package l7

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

// listenerState is what a listener's requests read besides the routing
// table: who is trusted, where the access log goes, the series for
// requests no route matched. Apply swaps it together with the table.
type listenerState struct {
	name     string
	trust    trustList
	log      *accessLog
	unrouted *routeMetrics
}

// observer wraps a listener's handler: it fixes the X-Forwarded-* headers
// before the request is routed and, when the response is done, records
// metrics and the access log line. It hands the handler a recorder that
// notes the status, the body size, the route and the backend.
type observer struct {
	s    *Server
	ln   *listener
	next http.Handler
	h2c  http.Handler // h2c Upgrade handling; nil unless the listener has h2c
	// upgraded marks the observer that serves requests after an h2c
	// Upgrade.
	upgraded bool
}

// recorder is the ResponseWriter the proxy writes to. Pooled: a request
// costs no allocation for it.
type recorder struct {
	w        http.ResponseWriter
	start    time.Time
	status   int
	bytes    int64
	rt       *route
	backend  *upstream.Backend
	attempts int
	hostBuf  [1]string
	line     []byte
}

var recorderPool = sync.Pool{New: func() any { return &recorder{line: make([]byte, 0, 512)} }}

func (o observer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if o.h2c != nil && r.ProtoMajor == 1 && isH2CUpgrade(r) {
		o.serveH2CUpgrade(w, r)
		return
	}
	if o.upgraded && isH2CUpgrade(r) {
		// The first request of an h2c Upgrade is served over HTTP/2
		// with its HTTP/1.1 connection headers; they are not the
		// client's wish to upgrade again.
		delete(r.Header, "Upgrade")
		delete(r.Header, "Connection")
		delete(r.Header, "Http2-Settings")
		if r.ContentLength == 0 {
			r.Body = http.NoBody
		}
	}
	st := o.ln.state.Load()
	rec := recorderPool.Get().(*recorder)
	rec.w, rec.start = w, time.Now()
	ip := clientIP(r.RemoteAddr)
	setForwarded(r, st.trust.contains(ip), &rec.hostBuf)
	// Deferred so that a response cut off by http.ErrAbortHandler is
	// still counted and logged.
	defer o.finish(rec, r, st, ip)
	o.next.ServeHTTP(rec, r)
}

// serveH2CUpgrade hands an HTTP/1.1 request asking for h2c to the x/net
// handler, which hijacks the connection and serves HTTP/2 on it until the
// client leaves. The server forgets a hijacked connection, so its Shutdown
// would neither wait for it nor close it; the listener tracks it with its
// tunnels instead: closing the listener sends GOAWAY (h2cGrace), waits for
// it until the drain deadline, then closes it.
func (o observer) serveH2CUpgrade(w http.ResponseWriter, r *http.Request) {
	t := &o.ln.tunnels
	// Added while the server still counts the connection as active, so
	// before closeListener can start waiting on the group.
	t.wg.Add(1)
	defer t.wg.Done()
	hw := &h2cHijacker{ResponseWriter: w, t: t}
	defer hw.forget()
	o.h2c.ServeHTTP(hw, r)
}

// h2cHijacker registers the connection the h2c handler hijacks.
type h2cHijacker struct {
	http.ResponseWriter
	t *tunnels
	c net.Conn
}

func (h *h2cHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := hj.Hijack()
	if err == nil {
		h.c = c
		h.t.add(c)
	}
	return c, brw, err
}

func (h *h2cHijacker) forget() {
	if h.c != nil {
		h.t.remove(h.c)
	}
}

func (o observer) finish(rec *recorder, r *http.Request, st *listenerState, ip string) {
	d := time.Since(rec.start)
	rm := st.unrouted
	if rec.rt != nil && rec.rt.metrics != nil {
		rm = rec.rt.metrics
	}
	retries := 0
	if rec.attempts > 1 {
		retries = rec.attempts - 1
	}
	if m := o.s.metrics; m != nil {
		m.observe(rm, rec.backend, rec.status, d, retries)
	}
	if st.log != nil {
		e := logEntry{
			start: rec.start, duration: d, client: ip, method: r.Method, uri: r.RequestURI,
			proto: r.Proto, host: r.Host, referer: r.Header.Get("Referer"), agent: r.Header.Get("User-Agent"),
			status: rec.status, bytes: rec.bytes, listener: st.name,
		}
		if e.status == 0 {
			e.status = http.StatusOK
		}
		if rm != nil {
			e.route = rm.name
		}
		if rec.backend != nil {
			e.backend = rec.backend.Name
		}
		if st.log.json {
			rec.line = appendJSON(rec.line[:0], &e)
		} else {
			rec.line = appendCombined(rec.line[:0], &e)
		}
		st.log.write(rec.line)
	}
	if cap(rec.line) > 16<<10 {
		rec.line = make([]byte, 0, 512) // one huge URI should not pin memory
	}
	rec.w, rec.rt, rec.backend, rec.hostBuf[0] = nil, nil, nil, ""
	rec.status, rec.bytes, rec.attempts = 0, 0, 0
	recorderPool.Put(rec)
}

// noteRoute tells the recorder which route serves the request.
func noteRoute(w http.ResponseWriter, rt *route) {
	if rec, ok := w.(*recorder); ok {
		rec.rt = rt
	}
}

// noteStatus records a status for a request that got no response, as
// nginx logs 499 for a client that left first.
func noteStatus(w http.ResponseWriter, code int) {
	if rec, ok := w.(*recorder); ok && rec.status == 0 {
		rec.status = code
	}
}

// noteBackend tells the recorder which backend an attempt goes to; every
// attempt after the first is a retry.
func noteBackend(w http.ResponseWriter, b *upstream.Backend) {
	if rec, ok := w.(*recorder); ok {
		rec.backend = b
		rec.attempts++
	}
}

func (rec *recorder) Header() http.Header { return rec.w.Header() }

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && code >= 200 {
		rec.status = code
	}
	rec.w.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.w.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// Flush passes streamed responses on at once.
func (rec *recorder) Flush() {
	if f, ok := rec.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over for an Upgrade; the 101 the proxy then
// writes itself is what the log shows.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := rec.w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := hj.Hijack()
	if err == nil && rec.status == 0 {
		rec.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// isH2CUpgrade reports whether r asks to switch to cleartext HTTP/2.
func isH2CUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header["Upgrade"], "h2c") && headerHasToken(r.Header["Connection"], "upgrade") &&
		len(r.Header["Http2-Settings"]) == 1
}
