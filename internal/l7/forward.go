package l7

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

// outcome classifies how an attempt ended, which decides retries and the
// error the client sees.
type outcome uint8

const (
	done         outcome = iota // a response was relayed (or the client left)
	dialFailed                  // nothing was sent: safe to retry anywhere
	sendFailed                  // the backend failed before a response began
	relayFailed                 // the backend failed after the response began
	timedOut                    // the backend did not answer in time
	clientFailed                // the client's request body could not be read
	statusFailed                // a retryable status was swallowed for a retry
)

// forward sends r to b and relays the response to w. It retries by itself
// only the keep-alive race: a pooled connection the backend had already
// closed, detected before any response byte arrived.
//
// With retryStatus, a response whose status the route retries is read and
// dropped instead of relayed, and statusFailed returned.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, b *upstream.Backend, ip string, x *exchange, retryStatus bool) (outcome, error) {
	noteBackend(w, b) // observe.go
	if u := s.h2For(b); u != nil {
		return s.forwardH2(u, w, r, b, ip, x, retryStatus) // h2.go
	}
	b.Active.Add(1)
	defer b.Active.Add(-1)
	b.Requests.Add(1)

	hasBody := r.Body != nil && r.Body != http.NoBody
	// A request can be sent twice only if repeating it is harmless and
	// nothing of it was consumed from the client, or its body is held in
	// memory.
	replayable := (!hasBody || x.replay != nil) && isIdempotent(r.Method)
	ioTimeout, firstByte := s.tr.ioTimeout, time.Duration(0)
	if rt := x.rt; rt != nil {
		replayable = (!hasBody || x.replay != nil) && rt.retry.replayable(r.Method)
		if rt.timeouts.idle > 0 {
			ioTimeout = rt.timeouts.idle
		}
		firstByte = rt.timeouts.firstByte
	}
	cp := s.tr.pool(b.Addr)
	now := time.Now()
	fresh := false
	for {
		var c *upConn
		if !fresh {
			c = cp.get(now, s.tr.idleTimeout)
		}
		if c != nil && !replayable && !c.alive() {
			c.nc.Close()
			continue
		}
		if c == nil {
			var err error
			c, err = s.dialRoute(r.Context(), cp, x.rt)
			if err != nil {
				s.fail(b)
				return dialFailed, err
			}
		}
		c.attach()
		c.extendDeadline(now, ioTimeout)
		x.c, x.timeout = c, ioTimeout

		err := writeRequest(c.bw, r, ip, hasBody, x)
		if err == nil {
			err = c.bw.Flush()
		}
		var n int
		if err == nil && firstByte > 0 {
			// The wait for the head has its own bound; the idle bound
			// takes over once the head is in.
			c.deadline = time.Now().Add(firstByte)
			err = c.nc.SetDeadline(c.deadline)
		}
		if err == nil && awaitHead(w, c) == errClientLeft {
			// The client left while the backend was thinking: the
			// backend sees its connection close, as nginx does it (499).
			c.close()
			noteStatus(w, statusClientClosed)
			return done, nil
		}
		if err == nil {
			n, err = readResponseHead(c.br, &x.head)
			for err == nil && x.head.status >= 100 && x.head.status < 200 && x.head.status != 101 {
				// Interim responses (100 Continue, 103 Early Hints) are
				// dropped: the request body was sent without waiting and
				// the server already answered the client's Expect.
				n, err = readResponseHead(c.br, &x.head)
			}
		}
		if err != nil {
			reused := c.reused
			c.close()
			if errors.Is(err, errClientBody) {
				// The client went away or sent a broken body; the backend
				// did nothing wrong.
				return clientFailed, err
			}
			if reused && n == 0 && replayable && isConnGone(err) {
				fresh = true
				if x.replay != nil {
					x.replay.rewind()
				}
				continue
			}
			s.fail(b)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return timedOut, err
			}
			return sendFailed, err
		}
		if x.head.status == 101 {
			c.close()
			s.fail(b)
			return sendFailed, errors.New("backend switched protocols without being asked to")
		}
		if firstByte > 0 {
			c.deadline = time.Now().Add(ioTimeout)
			c.nc.SetDeadline(c.deadline)
		}
		if retryStatus && x.rt.retry.statuses.has(x.head.status) {
			s.report(b, x.rt, x.head.status)
			s.discard(r, c, x)
			return statusFailed, nil
		}
		return s.relay(w, r, b, c, x)
	}
}

func (s *Server) fail(b *upstream.Backend) {
	b.Failures.Add(1)
	b.ConsecutiveFailures.Add(1)
	if s.opts.Passive != nil {
		s.opts.Passive.Failure(b)
	}
}

func (s *Server) succeed(b *upstream.Backend) {
	if b.ConsecutiveFailures.Load() != 0 {
		b.ConsecutiveFailures.Store(0)
	}
	if s.opts.Passive != nil {
		s.opts.Passive.Success(b)
	}
}

// isIdempotent lists the methods RFC 9110 §9.2.2 lets a proxy repeat.
func isIdempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut,
		http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// isConnGone reports whether err means the backend closed the connection:
// the signature of a pooled connection that went stale.
func isConnGone(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne *net.OpError
	if errors.As(err, &ne) && !ne.Timeout() {
		return true // ECONNRESET, EPIPE and the like
	}
	return false
}
