package l7

import (
	"errors"
	"net/http"
	"strings"

	"github.com/strata-lb/strata/internal/upstream"
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

	// Choose the pool and the backend: a split condition, then a valid
	// sticky cookie, then the split weights and the pool's picker.
	pi := 0
	forced := -1
	if len(rt.splits) > 0 {
		forced = rt.forcedPool(r)
	}
	key := rt.hashKey(r, ip)
	var b *upstream.Backend
	var snaps []*upstream.Snapshot
	var setCookie []string
	if rt.sticky != nil {
		snaps = make([]*upstream.Snapshot, len(rt.pools))
		for i, p := range rt.pools {
			snaps[i] = p.Snapshot()
		}
		b, pi = rt.sticky.resolve(r, snaps, forced)
	}
	if b == nil {
		pi = forced
		if pi < 0 {
			pi = rt.drawPool()
		}
	}
	pool := rt.pools[pi]
	snap := pool.Snapshot()
	if snaps != nil {
		snap = snaps[pi]
	}
	if b == nil {
		b = snap.Pick(key)
		if b == nil {
			http.Error(w, "no backend available", http.StatusServiceUnavailable)
			return
		}
		if rt.sticky != nil {
			setCookie = rt.sticky.setCookie(snaps, pi, b)
		}
	}
	upgrade := r.Header["Upgrade"] != nil && headerHasToken(r.Header["Connection"], "upgrade")
	if upgrade {
		h.s.tunnel(w, r, rt, snap, b, ip)
		return
	}

	x := exchangePool.Get().(*exchange)
	defer releaseExchange(x)
	x.rt, x.setCookie = rt, setCookie
	pol := &rt.retry
	rt.budget.request()
	// A request is sent again only if its method allows it and its body,
	// if any, is held in memory.
	replayable := pol.attempts > 0 && pol.replayable(r.Method)
	if replayable && hasBody {
		rb, ok, err := bufferBody(r, pol.maxBody)
		if err != nil {
			h.clientBodyFailed(w, err)
			return
		}
		x.replay, replayable = rb, ok
	}
	var triedBuf [4]*upstream.Backend
	tried := triedBuf[:0]
	for attempt := 0; ; attempt++ {
		tried = append(tried, b)
		left := attempt < pol.attempts
		// Whether a retry would be possible decides, before the response
		// is seen, whether a retryable status may be swallowed.
		statusRetry := left && replayable && !pol.statuses.empty() && len(snap.Ready) > len(tried) && rt.budget.allow()
		res, err := h.s.forward(w, r, b, ip, x, statusRetry)
		retry := false
		switch res {
		case done:
			return
		case dialFailed:
			// Nothing was sent, so any method may go elsewhere, and it
			// cost no backend anything: the budget is not charged.
			h.s.log.Warn("connecting to backend", "route", rt.name, "pool", pool.Name(), "backend", b.Name, "err", err)
			retry = left
		case sendFailed:
			h.s.log.Warn("proxying to backend", "route", rt.name, "pool", pool.Name(), "backend", b.Name, "err", err)
			retry = left && replayable && rt.budget.withdraw()
		case timedOut:
			h.s.log.Warn("waiting for backend", "route", rt.name, "pool", pool.Name(), "backend", b.Name, "err", err)
			retry = left && replayable && pol.onTimeout && rt.budget.withdraw()
		case statusFailed:
			// The budget allowed it before the attempt; charge it now.
			rt.budget.withdraw()
			retry = true
		case clientFailed:
			h.clientBodyFailed(w, err)
			return
		case relayFailed:
			h.s.log.Warn("relaying response from backend", "route", rt.name, "pool", pool.Name(), "backend", b.Name, "err", err)
			// The status line is gone; only cutting the connection tells
			// the client the response is incomplete.
			panic(http.ErrAbortHandler)
		}
		if retry && len(tried) < cap(triedBuf) {
			snap = pool.Snapshot()
			if nb := another(snap, tried, key); nb != nil {
				b = nb
				if x.replay != nil {
					x.replay.rewind()
				}
				if rt.sticky != nil {
					x.setCookie = rt.sticky.setCookie(snaps, pi, b)
				}
				continue
			}
		}
		switch res {
		case timedOut:
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		case statusFailed:
			// Unreachable: a status is swallowed only when a retry was
			// possible; answer as the backend did if it ever happens.
			http.Error(w, http.StatusText(x.head.status), x.head.status)
		default:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}
		return
	}
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
