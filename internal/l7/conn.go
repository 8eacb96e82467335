package l7

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// upConn is one connection to a backend. It belongs to the request that
// holds it, or to its pool while idle; never to both.
type upConn struct {
	nc  net.Conn
	raw syscall.RawConn // for the liveness probe; nil if unsupported
	cp  *connPool

	br *bufio.Reader // attached while in use, pooled while idle
	bw *bufio.Writer

	// deadline is the read/write deadline last set on nc; it is moved
	// forward only when half of the timeout has been used, which keeps a
	// timer update off almost every request.
	deadline time.Time
	idleAt   time.Time
	reused   bool
}

// Connections on both sides, clients' and backends', borrow their
// buffers from these pools while they carry a request and give them back
// when they go idle or close. The sizes follow what flows each way: a
// request head is small, so a client's read buffer and a backend's write
// buffer are small; a response is read from the backend and written to
// the client in pieces of up to proxyBuf (nginx's proxy_buffer_size), so
// that a response head and a body of that size cross each side in one
// system call instead of one per 4 or 8 KiB.
const (
	smallReadBuf  = 8 << 10
	smallWriteBuf = 4 << 10
	proxyBuf      = 32 << 10
)

var (
	smallReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, smallReadBuf) }}
	proxyReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, proxyBuf) }}
	smallWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, smallWriteBuf) }}
	proxyWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, proxyBuf) }}
)

func readerPool(size int) *sync.Pool {
	if size == proxyBuf {
		return &proxyReaders
	}
	return &smallReaders
}

func writerPool(size int) *sync.Pool {
	if size == proxyBuf {
		return &proxyWriters
	}
	return &smallWriters
}

// takeBuffers borrows a read buffer of rsize over r and a write buffer of
// wsize over w (sizes of the pools above).
func takeBuffers(r io.Reader, rsize int, w io.Writer, wsize int) (*bufio.Reader, *bufio.Writer) {
	br := readerPool(rsize).Get().(*bufio.Reader)
	br.Reset(r)
	bw := writerPool(wsize).Get().(*bufio.Writer)
	bw.Reset(w)
	return br, bw
}

// takeClientBuffers borrows a client connection's buffers: requests in,
// responses out.
func takeClientBuffers(r io.Reader, w io.Writer) (*bufio.Reader, *bufio.Writer) {
	return takeBuffers(r, smallReadBuf, w, proxyBuf)
}

// returnBuffers gives back what takeBuffers lent (either may be nil) and
// clears the caller's references.
func returnBuffers(br **bufio.Reader, bw **bufio.Writer) {
	if *br != nil {
		(*br).Reset(nil)
		readerPool((*br).Size()).Put(*br)
		*br = nil
	}
	if *bw != nil {
		(*bw).Reset(nil)
		writerPool((*bw).Size()).Put(*bw)
		*bw = nil
	}
}

func (c *upConn) attach() { c.br, c.bw = takeBuffers(c.nc, proxyBuf, c.nc, smallWriteBuf) }

func (c *upConn) detach() { returnBuffers(&c.br, &c.bw) }

// close closes the connection and returns its buffers.
func (c *upConn) close() {
	c.detach()
	c.nc.Close()
}

// extendDeadline makes sure at least half of timeout is left before the
// connection's deadline. Under load this sets a deadline once per
// timeout/2 per connection instead of once per request; the price is that
// a stalled backend is cut off after between timeout/2 and timeout.
func (c *upConn) extendDeadline(now time.Time, timeout time.Duration) {
	if c.deadline.Sub(now) >= timeout/2 {
		return
	}
	c.deadline = now.Add(timeout)
	c.nc.SetDeadline(c.deadline)
}

// alive probes an idle connection without blocking: a backend that closed
// it has left an EOF (or unexpected bytes) in the socket. Requests that
// cannot be retried use it before sending, so that the common keep-alive
// race costs them nothing.
func (c *upConn) alive() bool {
	if c.raw == nil {
		return true
	}
	ok := true
	var buf [1]byte
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN means nothing to read: the connection is idle and open.
		// Anything else, data or EOF or an error, means it is unusable.
		ok = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true
	})
	return ok && err == nil
}

// connPool is the set of idle connections to one backend address. The
// critical section is a slice push or pop, so a mutex is cheaper here than
// any lock-free list and keeps LIFO order, which reuses warm connections
// and lets the cold ones time out.
type connPool struct {
	addr    string
	max     int
	mu      sync.Mutex
	idle    []*upConn
	closed  bool
	lastPut time.Time // the reaper forgets pools unused for long
}

// get pops the most recently used idle connection that is not too old.
func (p *connPool) get(now time.Time, maxIdle time.Duration) *upConn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if now.Sub(c.idleAt) < maxIdle {
			c.reused = true
			return c
		}
		c.nc.Close()
	}
}

// put returns a connection whose last response was fully read. It closes
// the connection instead when the pool is full or closed.
func (p *connPool) put(c *upConn, now time.Time) {
	c.detach()
	c.idleAt = now
	p.mu.Lock()
	p.lastPut = now
	if p.closed || len(p.idle) >= p.max {
		p.mu.Unlock()
		c.nc.Close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// reap closes idle connections older than maxIdle, and those the backend
// has closed: nothing reads an idle connection, so one whose backend left
// the pool (deregistered, removed by a reload) would otherwise sit in
// CLOSE_WAIT, holding its fd, until maxIdle. The probe is one non-blocking
// recv per idle connection, made under the pool's lock so that no request
// takes the connection meanwhile.
func (p *connPool) reap(now time.Time, maxIdle time.Duration) (unused bool) {
	p.mu.Lock()
	var old []*upConn
	kept := p.idle[:0]
	for _, c := range p.idle {
		if now.Sub(c.idleAt) >= maxIdle || !c.alive() {
			old = append(old, c)
			continue
		}
		kept = append(kept, c)
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	if len(p.idle) == 0 && now.Sub(p.lastPut) >= maxIdle {
		// A request still holding this pool closes its connection
		// instead of putting it back here, so nothing can leak.
		p.closed = true
		unused = true
	}
	p.mu.Unlock()
	for _, c := range old {
		c.nc.Close()
	}
	return unused
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// transport holds the connection pools of every backend address, in a map
// that is copied on write so that the request path reads it with one
// atomic load and no lock.
type transport struct {
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration
	ioTimeout   time.Duration

	pools atomic.Pointer[map[string]*connPool]
	mu    sync.Mutex // serialises writers of pools
	done  chan struct{}
	wg    sync.WaitGroup
}

func newTransport(o *Options) *transport {
	t := &transport{
		dialer:      net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second},
		maxIdle:     o.MaxIdlePerBackend,
		idleTimeout: o.UpstreamIdleTimeout,
		ioTimeout:   o.UpstreamTimeout,
		done:        make(chan struct{}),
	}
	m := map[string]*connPool{}
	t.pools.Store(&m)
	t.wg.Add(1)
	go t.reaper()
	return t
}

func (t *transport) pool(addr string) *connPool {
	if p := (*t.pools.Load())[addr]; p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.pools.Load()
	if p := old[addr]; p != nil {
		return p
	}
	// A pool the reaper closed is replaced here: the reaper removes it from
	// the map right after closing it, so a request that finds it missing
	// builds a fresh one.
	p := &connPool{addr: addr, max: t.maxIdle, lastPut: time.Now()}
	select {
	case <-t.done:
		p.closed = true // after close, connections are never kept
	default:
	}
	m := make(map[string]*connPool, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[addr] = p
	t.pools.Store(&m)
	return p
}

// dial opens a new connection to cp's backend.
func (t *transport) dial(ctx context.Context, cp *connPool) (*upConn, error) {
	return dialWith(ctx, &t.dialer, cp)
}

// dialWith opens a new connection to cp's backend with d.
func dialWith(ctx context.Context, d *net.Dialer, cp *connPool) (*upConn, error) {
	nc, err := d.DialContext(ctx, "tcp", cp.addr)
	if err != nil {
		return nil, err
	}
	c := &upConn{nc: nc, cp: cp}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c, nil
}

// reapEvery bounds the reaper's period, and so how long a connection the
// backend closed stays open on this side.
const reapEvery = 2 * time.Second

// reaper closes connections idle for longer than idleTimeout or closed by
// their backend, so that a backend that left the pools does not keep
// sockets open, and forgets pools that have been idle and unused for as
// long.
func (t *transport) reaper() {
	defer t.wg.Done()
	tick := time.NewTicker(min(t.idleTimeout/2, reapEvery))
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			var unused []string
			for addr, p := range *t.pools.Load() {
				if p.reap(now, t.idleTimeout) {
					unused = append(unused, addr)
				}
			}
			if len(unused) > 0 {
				t.forget(unused)
			}
		}
	}
}

func (t *transport) forget(addrs []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.pools.Load()
	m := make(map[string]*connPool, len(old))
	for k, v := range old {
		m[k] = v
	}
	for _, a := range addrs {
		delete(m, a)
	}
	t.pools.Store(&m)
}

// retain closes and forgets the connection pools of addresses not in live,
// so that backends that left every pool (a registry deregistration) give
// their idle connections back at once rather than at the reaper's next
// pass. A request still holding such a pool closes its connection when it
// ends, as after reap.
func (t *transport) retain(live map[string]bool) {
	var gone []string
	for addr, p := range *t.pools.Load() {
		if !live[addr] {
			p.closeAll()
			gone = append(gone, addr)
		}
	}
	if len(gone) > 0 {
		t.forget(gone)
	}
}

// close stops the reaper and closes every idle connection; connections in
// use are closed by their requests when they finish.
func (t *transport) close() {
	t.mu.Lock()
	select {
	case <-t.done:
	default:
		close(t.done)
	}
	pools := *t.pools.Load()
	t.mu.Unlock()
	for _, p := range pools {
		p.closeAll()
	}
	t.wg.Wait()
}
