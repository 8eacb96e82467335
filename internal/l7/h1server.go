package l7

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	"github.com/strata-lb/strata/internal/netpark"
	"github.com/strata-lb/strata/internal/sockopt"
)

// h1Server serves a listener's client connections. It reads HTTP/1.x
// itself, in place of net/http's server: one goroutine per connection, no
// goroutine reading ahead while a request is proxied, and per-connection
// request, header map and buffers reused from one request to the next, so
// a keep-alive request costs the proxy its system calls and little else.
// It hands the handler the same *http.Request and http.ResponseWriter
// that net/http would. Connections that speak HTTP/2 (ALPN h2 on TLS, the
// h2c preface) go to golang.org/x/net/http2's ServeConn.
//
// The request head is parsed strictly (h1request.go): RFC 9112 framing,
// with every ambiguity that could smuggle a request refused.
type h1Server struct {
	handler   http.Handler
	ctx       context.Context // every request's context: it carries the listener
	maxHeader int
	log       *slog.Logger
	// onConn, when set, is told of a connection opening (true) and
	// closing or being hijacked (false), for the connection metrics.
	onConn func(open bool)
	// timeouts returns the listener's current client timeouts; nil takes
	// the defaults (timeouts.go).
	timeouts func() *clientTimeouts

	// h2, when set, serves the connections that speak HTTP/2: those that
	// chose h2 by ALPN and, with h2c, those that open with the HTTP/2
	// preface. h2Base is its base config; its Shutdown sends them GOAWAY.
	h2     *http2.Server
	h2Base *http.Server
	h2c    bool

	// idleReleases counts the times an idle connection gave its buffers
	// back (waitIdle).
	idleReleases atomic.Int64
	// states holds the request state of connections closed or parked
	// (connState), for new and woken ones.
	states sync.Pool

	// parker holds the plaintext connections idle past idleRelease in
	// one epoll set, with no goroutine of their own (parkIdle). It is
	// opened by the first connection that parks and closed with the
	// server; nil until then, and after the kernel refused one
	// (parkFailed), when idle connections wait in a goroutine each.
	parker     atomic.Pointer[netpark.Parker]
	parkFailed bool          // under mu
	sweepStop  chan struct{} // ends the parked connections' sweeper
	sweepDone  chan struct{}

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*h1Conn]struct{}
	shutdown atomic.Bool
	wg       sync.WaitGroup // connection goroutines
}

// connection states, as net/http names them.
const (
	h1New int32 = iota
	h1Active
	h1Idle
	h1Closed
)

// h1Conn is one client connection and its reusable per-request state.
type h1Conn struct {
	s      *h1Server
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	state  atomic.Int32
	remote string

	// to are the client timeouts, taken afresh for every request.
	to *clientTimeouts

	// parked is set when the connection, idle past idleRelease, is to
	// wait for its next request without the goroutine that served the
	// last one (waitIdle); end hands it to the parker or, without one, to
	// a goroutine of its own.
	parked bool
	// raw is the plaintext socket's, taken on the first park.
	raw syscall.RawConn
	// park is the connection's place in its server's parker; idleEnd
	// (Unix nanoseconds) is when the sweeper closes it parked.
	park    netpark.Item
	idleEnd atomic.Int64

	st *connState // where req, hdr and the scratch came from
	// reqScratch is st's: the head, URL and response writer of the
	// requests, nil while the connection is parked, so that a parked
	// connection keeps only the fields above.
	*reqScratch

	tls *tls.ConnectionState // nil on plaintext
	req *http.Request        // reused: every field but its context is reset per request
	hdr http.Header
}

// maxRequestDiscard is how much of a request body the handler left
// unread is read and dropped to keep the connection; past it the
// connection closes (net/http uses the same figure).
const maxRequestDiscard = 256 << 10

// Serve accepts connections until the listener is closed, and closes it
// when it returns. It returns http.ErrServerClosed after Shutdown or
// Close, also when they came first (a listener removed by a reload right
// after it was opened).
func (s *h1Server) Serve(ln net.Listener) error {
	defer ln.Close()
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = ln
	if s.conns == nil {
		s.conns = map[*h1Conn]struct{}{}
	}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAccept(err) {
				// EMFILE and the like: wait, as net/http does, rather
				// than spin or give up on the listener.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accepting connection", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &h1Conn{s: s, nc: nc}
		if !s.track(c) {
			nc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// isTemporaryAccept reports accept errors that concern one connection or
// a passing shortage, after which the listener still works.
func isTemporaryAccept(err error) bool {
	var se interface{ Temporary() bool }
	return errors.As(err, &se) && se.Temporary()
}

func (s *h1Server) track(c *h1Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	if s.onConn != nil {
		s.onConn(true)
	}
	return true
}

func (s *h1Server) untrack(c *h1Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if s.onConn != nil {
		s.onConn(false)
	}
	s.wg.Done()
}

// Shutdown stops accepting, closes idle connections, and waits for the
// others to finish their request and close, until ctx ends.
func (s *h1Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown.Store(true)
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		if s.h2Base != nil {
			// GOAWAY to the HTTP/2 connections; it returns at once. It
			// is sent again on every tick because x/net tells only the
			// connections registered so far, and one accepted a moment
			// ago may not be yet.
			s.h2Base.Shutdown(ctx)
		}
		select {
		case <-done:
			s.closeParker()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// closeIdle closes connections that wait between requests. A connection
// that finishes a request after this looks at it sees shutdown set and
// closes itself. Connections that never sent a byte are the listener's
// to close (connLimiter.closeUnused, which knows whether anything was
// read); a new connection whose first request is being read is not idle.
// A parked connection is closed whatever its state: it has read nothing
// it has not served, and a new one parks only when nothing came at all.
// Closing its socket, as closeUnused does, tells its parker nothing
// (a closed descriptor leaves the epoll set without an event), so it must
// be taken over here, or Shutdown would wait for it for ever.
func (s *h1Server) closeIdle() {
	var parked []*h1Conn
	s.mu.Lock()
	for c := range s.conns {
		if c.park.State.Load() == netpark.Parked {
			parked = append(parked, c)
			continue
		}
		if c.state.Load() == h1Idle {
			c.nc.Close()
		}
	}
	s.mu.Unlock()
	// A parked connection has no goroutine to see its socket close:
	// whoever takes it over finishes it (outside mu, which untrack takes).
	for _, c := range parked {
		c.takeOver()
	}
}

// Close closes the listener and every connection at once.
func (s *h1Server) Close() error {
	s.mu.Lock()
	s.shutdown.Store(true)
	ln := s.ln
	var parked []*h1Conn
	for c := range s.conns {
		c.nc.Close()
		if c.park.State.Load() == netpark.Parked {
			parked = append(parked, c)
		}
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range parked {
		c.takeOver()
	}
	// A connection still running finds its socket closed and cannot
	// park: arming a closed socket fails, and it closes itself.
	s.closeParker()
	return nil
}

// serve runs the connection's requests one after another.
func (c *h1Conn) serve() {
	defer c.end()
	c.remote = c.nc.RemoteAddr().String()
	c.to = c.s.limits()
	if tc, ok := c.nc.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(c.to.header))
		if err := tc.HandshakeContext(c.s.ctx); err != nil {
			c.s.log.Debug("TLS handshake failed", "remote", c.remote, "err", err)
			return
		}
		tc.SetDeadline(time.Time{})
		cs := tc.ConnectionState()
		if cs.NegotiatedProtocol == "h2" && c.s.h2 != nil {
			c.serveH2(tc)
			return
		}
		c.tls = &cs
	}
	c.br, c.bw = takeClientBuffers(c.nc, sendWriter{c}) // conn.go
	if c.s.h2c && c.tls == nil && c.priorKnowledge() {
		c.serveH2(bufferedConn{Conn: c.nc, r: c.br})
		// The HTTP/2 server's reader may still be in c.br as ServeConn
		// returns; it ends with the connection, so the buffer is left to
		// it rather than pooled.
		c.br = nil
		return
	}
	c.newRequestState()
	c.loop(false)
}

// connState is what a connection reuses from one request to the next:
// the request, the two header maps, the head and its buffers, the URL and
// the response writer. A connection that closes or parks hands it to the
// next through its server's pool, so that a new connection does not make
// them again (16 allocations and about 4 KiB each), and a parked one does
// not keep them.
type connState struct {
	req       *http.Request // its context is the server's: the pool is the server's
	hdr, whdr http.Header
	sc        reqScratch
}

// reqScratch is the part of a connection's request state that h1Conn
// reaches through an embedded pointer, as if they were its own fields.
type reqScratch struct {
	url  urlScratch
	head requestHead
	w    h1Writer
	// sendDeadline is the write deadline last set (sendWriter).
	sendDeadline time.Time
}

// newRequestState takes the connection's request state from the pool, or
// makes it.
func (c *h1Conn) newRequestState() {
	st, _ := c.s.states.Get().(*connState)
	if st == nil {
		st = &connState{req: (&http.Request{}).WithContext(c.s.ctx), hdr: make(http.Header, 16), whdr: make(http.Header, 16)}
	}
	c.st, c.reqScratch = st, &st.sc
	c.req, c.hdr, c.w.hdr, c.w.c = st.req, st.hdr, st.whdr, c
	c.req.TLS = c.tls
}

// dropRequestState gives the request state back to the pool, emptied of
// everything that belonged to this connection's requests, when the
// connection closes or parks.
func (c *h1Conn) dropRequestState() {
	st := c.st
	if st == nil {
		return
	}
	r := st.req
	r.Header, r.URL, r.Body, r.Host, r.RequestURI, r.RemoteAddr, r.TLS = nil, nil, nil, "", "", "", nil
	clear(st.hdr)
	clear(st.whdr)
	sc := &st.sc
	sc.head = requestHead{raw: sc.head.raw[:0], fields: sc.head.fields[:0]}
	sc.url.u = url.URL{}
	sc.w = h1Writer{hdr: st.whdr}
	// The deadline was this connection's socket's; the next one's
	// starts unset.
	sc.sendDeadline = time.Time{}
	c.st, c.reqScratch, c.req, c.hdr = nil, nil, nil, nil
	c.s.states.Put(st)
}

// end closes the connection when its goroutine returns, unless the
// connection lives on: hijacked by a handler, or parked idle (waitIdle,
// parkIdle).
func (c *h1Conn) end() {
	v := recover()
	if v != nil && v != http.ErrAbortHandler {
		buf := make([]byte, 64<<10)
		buf = buf[:runtime.Stack(buf, false)]
		c.s.log.Error("panic serving request", "remote", c.remote, "panic", fmt.Sprint(v), "stack", string(buf))
	}
	if c.reqScratch != nil && c.w.hijacked {
		return // the handler owns the connection, and Hijack untracked it
	}
	if c.parked {
		// The last thing this goroutine does: from here the parker, or a
		// new goroutine, owns c.
		c.parked = false
		c.parkIdle()
		return
	}
	c.nc.Close()
	c.state.Store(h1Closed)
	c.release()
	if v == nil {
		// After a panic the handler may still hold the request.
		c.dropRequestState()
	}
	c.park.Forget()
	c.s.untrack(c)
}

// loop reads and serves requests until the connection ends or parks;
// woken says the first request's first bytes have just arrived on a
// parked connection.
func (c *h1Conn) loop(woken bool) {
	for {
		ok, err := c.readRequest(woken)
		woken = false
		if err != nil {
			c.refuse(err)
			return
		}
		if !ok || c.parked {
			return
		}
		if keep := c.serveRequest(); !keep || c.s.shutdown.Load() {
			return
		}
	}
}

// h2Preface is how an HTTP/2 client opens a connection (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// priorKnowledge reports whether the connection opens with the HTTP/2
// preface. It waits for more bytes only while what came so far is a
// prefix of it, which no HTTP/1 request is past its first four bytes.
func (c *h1Conn) priorKnowledge() bool {
	c.nc.SetReadDeadline(time.Now().Add(c.to.idle))
	if _, err := c.br.Peek(1); err != nil {
		return false
	}
	got, _ := c.br.Peek(min(c.br.Buffered(), len(h2Preface)))
	if !strings.HasPrefix(h2Preface, string(got)) {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(c.to.header))
	got, err := c.br.Peek(len(h2Preface))
	return err == nil && string(got) == h2Preface
}

// clientListenConfig opens the listeners' sockets. TCP keep-alive is off
// on accepted connections, as nginx and HAProxy have it by default: an
// HTTP/1 connection is bounded by the client timeouts, and turning the
// probes on cost four setsockopt calls per connection, a sixth of the
// system calls of a connection that carries one request. Connections that
// outlive those timeouts (HTTP/2, upgraded tunnels) turn it on
// themselves (keepAlive). The sockets bind with IP_FREEBIND, so a listener
// on a VIP that no interface holds yet serves once it arrives
// (sockopt.Freebind).
var clientListenConfig = net.ListenConfig{KeepAlive: -1, Control: sockopt.Freebind}

// keepAlive turns TCP keep-alive probes on for a client connection that no
// timeout of ours bounds while it is silent, so that a peer that vanished
// without a FIN is found (Go's default period, as before).
func keepAlive(nc net.Conn) {
	if tc, ok := socketOf(nc).(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true})
	}
}

// serveH2 hands the connection to the HTTP/2 server until it ends. It
// counts as busy throughout: GOAWAY, not closeIdle, ends it gracefully.
func (c *h1Conn) serveH2(nc net.Conn) {
	keepAlive(c.nc)
	c.state.Store(h1Active)
	nc.SetDeadline(time.Time{})
	c.s.h2.ServeConn(nc, &http2.ServeConnOpts{Context: c.s.ctx, BaseConfig: c.s.h2Base, Handler: c.s.handler})
}

// bufferedConn reads through the reader that already holds the start of
// the stream.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// sendWriter is what the connection's write buffer writes to: the
// connection, with a write deadline (send_timeout) renewed when less than
// half of it is left, so a long download is never cut while it moves and
// a timer is touched at most every half timeout. A client that stops
// reading fails the write once the deadline passes.
type sendWriter struct{ c *h1Conn }

func (w sendWriter) Write(p []byte) (int, error) {
	c := w.c
	if now := time.Now(); c.sendDeadline.Sub(now) < c.to.send/2 {
		c.sendDeadline = now.Add(c.to.send)
		c.nc.SetWriteDeadline(c.sendDeadline)
	}
	return c.nc.Write(p)
}

// release returns the buffers to their pools.
func (c *h1Conn) release() { returnBuffers(&c.br, &c.bw) }

// readRequest waits for the next request and reads its head into c.req.
// It returns false when the client closed the connection (or went idle for
// too long) between requests, and when the connection is to park
// (c.parked): then the parker waits for the request, and a goroutine it
// starts serves it.
func (c *h1Conn) readRequest(woken bool) (bool, error) {
	now := time.Now()
	if !woken {
		c.to = c.s.limits()
	}
	if !woken && c.br.Buffered() == 0 {
		if c.state.Load() != h1New {
			c.state.Store(h1Idle)
		}
		if c.s.shutdown.Load() {
			return false, nil
		}
		if !c.waitIdle(now, now.Add(c.to.idle)) || c.parked {
			return false, nil
		}
		now = time.Now()
	}
	c.state.Store(h1Active)
	c.nc.SetReadDeadline(now.Add(c.to.header))
	if err := readRequestHead(c.br, &c.head, c.s.maxHeader); err != nil {
		if errors.Is(err, errIdleEOF) {
			return false, nil
		}
		return false, err
	}
	if err := c.head.build(c); err != nil {
		return false, err
	}
	if c.head.body != bodyNone {
		// The body's reads set their own deadline (client_body_timeout,
		// h1body.go), which the head's must not cut short.
		c.nc.SetReadDeadline(time.Time{})
	}
	return true, nil
}

// idleRelease is how long a keep-alive connection waits for its next
// request with its buffers and goroutine; past it they go back to their
// pools and the connection parks until the client sends again, as nginx
// frees an idle connection's buffers. A client that keeps its connection
// busy never pays for the release; one that pauses longer pays a park and
// a wake-up (an epoll_ctl and a goroutine) per request. It is l4's
// parkAfter, and short because what the connections that went quiet in
// the last idleRelease hold is most of the memory after a burst: with a
// second, 9,900 connections opened in a few seconds left 12 KiB of
// buffers (and a stack grown to 8 KiB) of a third of them in the pools,
// 6.6 KiB of RSS per idle connection, against 3.0 KiB with 200 ms.
// A variable for tests.
var idleRelease = 200 * time.Millisecond

// waitIdle waits until the next request begins, and reports false when
// the client closed the connection or stayed silent until idleEnd. A
// plaintext connection idle past idleRelease gives its buffers and
// request state back (TLS and PROXY protocol connections may hold
// read-ahead bytes in their own layers, so they keep theirs and wait
// here) and sets c.parked: this goroutine ends, and its socket waits in
// the server's parker with no goroutine at all (parkIdle).
func (c *h1Conn) waitIdle(now, idleEnd time.Time) bool {
	sock := c.plainSocket()
	release := sock != nil && idleEnd.Sub(now) > idleRelease
	if release {
		c.nc.SetReadDeadline(now.Add(idleRelease))
	} else {
		c.nc.SetReadDeadline(idleEnd)
	}
	_, err := c.br.Peek(1)
	if err == nil {
		return true
	}
	if ne, ok := err.(net.Error); !release || !ok || !ne.Timeout() {
		return false
	}
	c.release()
	c.s.idleReleases.Add(1)
	c.dropRequestState()
	if c.raw == nil {
		c.raw, _ = sock.SyscallConn()
		c.park.Init(c)
	}
	c.idleEnd.Store(idleEnd.UnixNano())
	c.parked = true
	return true
}

// parkIdle hands an idle connection, its buffers and request state given
// back, to the server's parker: its socket waits in the epoll set and
// this goroutine ends, so that an idle connection holds no goroutine (a
// stack of 2 KiB at the least, a quarter of what such a connection cost
// with one). The first byte (or hang-up) from the client starts a
// goroutine that serves the connection on (Resume); the sweeper closes
// it at the idle timeout, and closeIdle at a graceful shutdown. Without
// a parker, or when the socket cannot be armed, the connection waits in
// a goroutine of its own, as before the parker.
func (c *h1Conn) parkIdle() {
	if pk := c.s.parkerFor(); pk != nil && c.raw != nil {
		if c.park.Park(pk, c.raw) {
			return // c belongs to the parker, or to whoever took it over
		}
	}
	c.nc.SetReadDeadline(time.Unix(0, c.idleEnd.Load()))
	go c.waitParked()
}

// Resume serves a parked connection whose client sent a byte or hung up
// (netpark.Resumer).
func (c *h1Conn) Resume() {
	defer c.end()
	c.serveWoken()
}

// waitParked is the goroutine of an idle connection that could not park:
// it waits on the socket without buffers until the client sends, then
// serves the connection on.
func (c *h1Conn) waitParked() {
	defer c.end()
	if !waitReadable(c.raw) {
		return
	}
	c.serveWoken()
}

func (c *h1Conn) serveWoken() {
	c.br, c.bw = takeClientBuffers(c.nc, sendWriter{c}) // conn.go
	c.newRequestState()
	c.loop(true)
}

// takeOver finishes a parked connection on behalf of the sweeper or a
// shutdown, and reports whether it was parked: one that an event resumed
// meanwhile is its goroutine's.
func (c *h1Conn) takeOver() bool {
	if !c.park.State.CompareAndSwap(netpark.Parked, netpark.Done) {
		return false
	}
	c.nc.Close()
	c.state.Store(h1Closed)
	c.park.Forget()
	c.s.untrack(c)
	return true
}

// parkerFor returns the server's parker, opening it on first use; nil
// when the kernel refused one or the server is shutting down.
func (s *h1Server) parkerFor() *netpark.Parker {
	if pk := s.parker.Load(); pk != nil {
		return pk
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pk := s.parker.Load(); pk != nil || s.parkFailed || s.shutdown.Load() {
		return pk
	}
	pk, err := netpark.New("l7-parker")
	if err != nil {
		s.parkFailed = true
		s.log.Warn("idle keep-alive connections keep a goroutine each", "err", err)
		return nil
	}
	s.parker.Store(pk)
	s.sweepStop, s.sweepDone = make(chan struct{}), make(chan struct{})
	go s.sweep(s.sweepStop, s.sweepDone)
	return pk
}

// closeParker stops the sweeper and closes the parker, once no
// connection can be parked in it any more.
func (s *h1Server) closeParker() {
	s.mu.Lock()
	pk := s.parker.Load()
	stop, done := s.sweepStop, s.sweepDone
	s.sweepStop = nil
	s.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-done
	pk.Close()
}

// sweep closes the parked connections idle past their keep-alive
// timeout. One pass over the connections every eighth of the idle
// timeout (at most every second, at least every 10 ms) replaces a timer
// per connection; a parked connection closes at most that long after its
// timeout.
func (s *h1Server) sweep(stop, done chan struct{}) {
	defer close(done)
	netpark.Sweep(stop, s.sweepEvery, func(now int64, expired []*h1Conn) []*h1Conn {
		s.mu.Lock()
		for c := range s.conns {
			if c.park.State.Load() == netpark.Parked && c.idleEnd.Load() <= now {
				expired = append(expired, c)
			}
		}
		s.mu.Unlock()
		return expired
	}, func(c *h1Conn) { c.takeOver() }) // outside mu, which untrack takes
}

// sweepEvery is an eighth of the current idle timeout (netpark.Sweep
// keeps it between 10 ms and a second).
func (s *h1Server) sweepEvery() time.Duration { return s.limits().idle / 8 }

// plainSocket returns the TCP socket of a connection that reads straight
// from it, or nil.
func (c *h1Conn) plainSocket() syscall.Conn {
	if lc, ok := c.nc.(*limitedConn); ok {
		if tc, ok := lc.Conn.(*net.TCPConn); ok {
			return tc
		}
	}
	return nil
}

// waitReadable blocks until sock has a byte (or an EOF) to read, without
// reading it, until its read deadline. It reports false on the deadline or
// a closed socket.
func waitReadable(rc syscall.RawConn) bool {
	if rc == nil {
		return false
	}
	var buf [1]byte
	err := rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	})
	return err == nil
}

// refuse answers a request that could not be read, then the connection
// closes. A timeout or a broken connection gets no answer.
func (c *h1Conn) refuse(err error) {
	var he *headError
	if !errors.As(err, &he) {
		return
	}
	c.sendDeadline = time.Now().Add(time.Second)
	c.nc.SetWriteDeadline(c.sendDeadline)
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		he.status, http.StatusText(he.status), len(he.msg)+1, he.msg+"\n")
	c.bw.Flush()
}

// serveRequest runs the handler on the request read and finishes its
// response. It reports whether the connection may carry another request.
func (c *h1Conn) serveRequest() (keep bool) {
	w := &c.w
	w.reset(c.req)
	body := c.head.bodyReader
	if c.head.continueWait && body != nil {
		body.expect = true
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if body != nil {
					body.close()
				}
				panic(v)
			}
		}()
		c.s.handler.ServeHTTP(w, c.req)
	}()
	if w.hijacked {
		return false
	}
	ok := w.finish()
	keep = ok && !c.head.close && !w.closeAfter
	if body != nil {
		// Whatever the handler did not read is read and dropped, up to a
		// bound, so that the next request starts where it should.
		if !body.close() {
			keep = false
		}
	}
	c.clearRequest()
	return keep
}
