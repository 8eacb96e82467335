package l7

import (
	"errors"
	"net/http"
	"strings"
)

// handler serves one listener: it routes each request and forwards it.
type handler struct {
	s  *Server
	ln *listener
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := h.ln.table.Load()
	if err := normalizeRequest(r); err != nil { // normpath.go
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if t.healthPath != "" && r.URL.Path == t.healthPath {
		h.s.serveHealth(w) // lameduck.go
		return
	}
	rt := t.find(r)
	noteRoute(w, rt) // observe.go
	if rt == nil {
		http.Error(w, "no route", http.StatusNotFound)
		return
	}
	ip := clientIP(r.RemoteAddr)
	// Protection first: nothing below should cost a backend anything for
	// a request that is refused anyway.
	if rt.limiter != nil {
		if ok, wait := rt.limiter.allow(r, ip); !ok {
			tooManyRequests(w, wait)
			return
		}
	}
	hasBody := r.Body != nil && r.Body != http.NoBody
	if t.maxBodyBytes > 0 && hasBody {
		if r.ContentLength > t.maxBodyBytes {
			tooLarge(w)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, t.maxBodyBytes)
	}
	switch {
	case rt.redirect != nil:
		rt.redirect.serve(w, r)
		return
	case rt.respond != nil:
		rt.respond.serve(w, r)
		return
	}
	if !rt.reqOps.empty() {
		rt.reqOps.apply(r.Header)
	}

	c := rt.choose(r, ip) // choose.go
	if c.b == nil {
		http.Error(w, "no backend available", http.StatusServiceUnavailable)
		return
	}
	upgrade := r.Header["Upgrade"] != nil && headerHasToken(r.Header["Connection"], "upgrade")
	if upgrade {
		h.s.tunnel(w, r, rt, c.snap, c.b, ip)
		return
	}

	h.proxy(w, r, rt, c, ip, hasBody) // retry.go
}

// clientBodyFailed answers a request whose body could not be read: 413
// when it passed the listener's limit, else 400.
func (h handler) clientBodyFailed(w http.ResponseWriter, err error) {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		tooLarge(w)
		return
	}
	http.Error(w, "reading request body failed", http.StatusBadRequest)
}

func tooLarge(w http.ResponseWriter) {
	// The rest of the body is not read; the connection cannot be reused.
	w.Header().Set("Connection", "close")
	http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
}

// clientIP returns the host part of a RemoteAddr without allocating.
func clientIP(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		addr = addr[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
}
