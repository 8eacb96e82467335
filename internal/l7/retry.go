package l7

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// retryPolicy is a compiled config.RouteRetry.
//
// What is retried, on another backend and at most attempts times:
//   - a connection that could not be opened, for every method: nothing was
//     sent (nginx's proxy_next_upstream error);
//   - a backend that failed before sending a response head, and with
//     onTimeout one that sent none in time, and a response whose status is
//     in statuses: only when the request can be sent again, that is its
//     method is idempotent or the route opted in with non_idempotent, and
//     its body, if any, fitted in maxBody and was buffered.
//
// Every retry but those after a failed connect (which put no load on a
// backend) must also fit in the route's retry budget.
type retryPolicy struct {
	attempts      int
	statuses      statusSet
	onTimeout     bool
	nonIdempotent bool
	maxBody       int64
}

const (
	defaultRetryAttempts = 1
	defaultRetryMaxBody  = 64 << 10
)

func compileRetry(c *config.RouteRetry) (retryPolicy, error) {
	p := retryPolicy{attempts: defaultRetryAttempts, onTimeout: c.OnTimeout,
		nonIdempotent: c.NonIdempotent, maxBody: c.MaxBodyBytes}
	if c.Attempts != nil {
		p.attempts = *c.Attempts
	}
	if p.attempts < 0 || p.attempts > 10 {
		return p, fmt.Errorf("attempts %d out of range 0–10", p.attempts)
	}
	if p.maxBody == 0 {
		p.maxBody = defaultRetryMaxBody
	}
	if p.maxBody < 0 {
		return p, fmt.Errorf("max_body_bytes must not be negative")
	}
	var err error
	p.statuses, err = newStatusSet(c.Statuses, 500)
	return p, err
}

// replayable reports whether a request of this method may be sent twice.
func (p *retryPolicy) replayable(method string) bool {
	return isIdempotent(method) || p.nonIdempotent
}

// replayBody is a request body held in memory so that it can be sent
// again; rewind starts it over.
type replayBody struct {
	bytes.Reader
	data []byte
}

func (b *replayBody) Close() error { return nil }
func (b *replayBody) rewind()      { b.Reset(b.data) }

// errBodyTooLarge marks a body that does not fit the replay buffer.
var errBodyTooLarge = errors.New("request body too large to buffer")

// bufferBody reads r's body into memory when it is at most max bytes and
// installs a replayable copy as r.Body. A larger body is left streaming
// (what was read is put back in front of the rest) and false returned.
func bufferBody(r *http.Request, max int64) (*replayBody, bool, error) {
	if r.ContentLength > max {
		return nil, false, nil
	}
	size := r.ContentLength
	if size < 0 {
		size = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	n, err := buf.ReadFrom(io.LimitReader(r.Body, max+1))
	if err != nil {
		// A failed read of the client's body is the client's error; the
		// caller answers it without touching a backend.
		return nil, false, clientBodyError{err}
	}
	if n > max {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body), r.Body}
		return nil, false, nil
	}
	rb := &replayBody{data: buf.Bytes()}
	rb.rewind()
	r.Body.Close()
	r.Body = rb
	r.ContentLength = n
	return rb, true, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// another picks a backend that has not been tried yet. The picker is asked
// first so that weights still count; hashing pickers return the same
// backend for the same key, so then the next untried ready backend in
// order is taken.
func another(snap *upstream.Snapshot, tried []*upstream.Backend, key uint64) *upstream.Backend {
	for i := uint64(1); i <= 2; i++ {
		if b := snap.Pick(key + i); b != nil && !triedBackend(tried, b) {
			return b
		}
	}
	n := len(snap.Ready)
	start := 0
	if n > 0 && len(tried) > 0 {
		for i, b := range snap.Ready {
			if b.Name == tried[len(tried)-1].Name {
				start = i + 1
				break
			}
		}
	}
	for i := range n {
		if b := snap.Ready[(start+i)%n]; !triedBackend(tried, b) {
			return b
		}
	}
	return nil
}

// triedBackend compares by name: snapshots change while a request runs,
// and the same backend then has a new *Backend.
func triedBackend(tried []*upstream.Backend, b *upstream.Backend) bool {
	for _, t := range tried {
		if t.Name == b.Name {
			return true
		}
	}
	return false
}

// report tells passive ejection how an attempt ended: a status the route
// lists in eject_on_status counts as a failure, as a connection error does.
func (s *Server) report(b *upstream.Backend, rt *route, status int) {
	if rt != nil && rt.ejectOn.has(status) {
		s.fail(b)
		return
	}
	s.succeed(b)
}

// maxDiscard is the largest response body read to keep a connection after
// a response dropped for a retry; a larger one costs the connection.
const maxDiscard = 64 << 10

// discard drops a response that is being retried elsewhere, keeping the
// connection when its body is short and delimited.
func (s *Server) discard(r *http.Request, c *upConn, x *exchange) {
	h := &x.head
	keep := !h.close && r.Method != http.MethodHead && h.contentLength >= 0 && h.contentLength <= maxDiscard
	if keep {
		if _, err := c.br.Discard(int(h.contentLength)); err != nil || c.br.Buffered() > 0 {
			keep = false
		}
	}
	if r.Method == http.MethodHead && !h.close && h.contentLength >= 0 {
		keep = c.br.Buffered() == 0
	}
	if keep {
		c.cp.put(c, time.Now())
		return
	}
	c.close()
}

// dialRoute opens a backend connection with the route's connect timeout.
func (s *Server) dialRoute(ctx context.Context, cp *connPool, rt *route) (*upConn, error) {
	if rt == nil || rt.timeouts.connect <= 0 {
		return s.tr.dial(ctx, cp)
	}
	d := s.tr.dialer // a copy: the route's timeout replaces the server's
	d.Timeout = rt.timeouts.connect
	return dialWith(ctx, &d, cp) // conn.go
}

// warnAttempt logs a failed attempt. It is a function of its own so that
// the arguments of its log calls take no room in proxy's stack frame:
// the frame of every request, and of a fresh goroutine's stack for each
// HTTP/2 stream, which grows by copying.
//
//go:noinline
func (h handler) warnAttempt(msg string, rt *route, pool *upstream.Pool, b *upstream.Backend, err error) {
	h.s.log.Warn(msg, "route", rt.name, "pool", pool.Name(), "backend", b.Name, "err", err)
}

// proxy sends r to the chosen backend and, as the route's retry policy and
// budget allow, to other backends of the same pool after a failure: the
// retry loop. It answers the client in every case.
func (h handler) proxy(w http.ResponseWriter, r *http.Request, rt *route, c choice, ip string, hasBody bool) {
	pool, snap, b, key := c.pool, c.snap, c.b, c.key
	x := exchangePool.Get().(*exchange)
	defer releaseExchange(x)
	x.rt, x.setCookie = rt, c.setCookie
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
			h.warnAttempt("connecting to backend", rt, pool, b, err)
			retry = left
		case sendFailed:
			h.warnAttempt("proxying to backend", rt, pool, b, err)
			retry = left && replayable && rt.budget.withdraw()
		case timedOut:
			h.warnAttempt("waiting for backend", rt, pool, b, err)
			retry = left && replayable && pol.onTimeout && rt.budget.withdraw()
		case statusFailed:
			// The budget allowed it before the attempt; charge it now.
			rt.budget.withdraw()
			retry = true
		case clientFailed:
			h.clientBodyFailed(w, err)
			return
		case relayFailed:
			h.warnAttempt("relaying response from backend", rt, pool, b, err)
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
					x.setCookie = rt.sticky.setCookie(c.snaps, c.pi, b)
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
