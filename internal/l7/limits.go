package l7

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/sockopt"
)

// connLimiter bounds a listener's open client connections. At the bound,
// Accept waits for one to close, leaving new connections in the kernel's
// accept queue (as HAProxy's maxconn does) rather than accepting and
// dropping them. The bound is read from the listener's current table, so
// a reload changes it for connections accepted afterwards.
//
// It also keeps the set of open connections, so that closing the listener
// can close those that never carried a byte (see closeUnused).
type connLimiter struct {
	net.Listener
	max    func() int
	mu     sync.Mutex
	cond   *sync.Cond
	open   int
	closed bool
	conns  map[*limitedConn]struct{}
	// reached counts the times Accept found the listener at its bound
	// and stopped taking connections (strata_l7_max_conns_reached_total).
	reached atomic.Uint64
}

func limitConns(ln net.Listener, max func() int) *connLimiter {
	l := &connLimiter{Listener: ln, max: max, conns: map[*limitedConn]struct{}{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// Accept waits until a connection may be taken, then accepts it.
func (l *connLimiter) Accept() (net.Conn, error) {
	l.mu.Lock()
	for waited := false; ; waited = true {
		m := l.max()
		if l.closed || m <= 0 || l.open < m {
			break
		}
		if !waited {
			l.reached.Add(1)
		}
		l.cond.Wait()
	}
	l.open++
	l.mu.Unlock()
	c, err := l.Listener.Accept()
	if err != nil {
		l.release(nil)
		return nil, err
	}
	lc := &limitedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	closed := l.closed
	l.mu.Unlock()
	if closed {
		// Accepted as the listener closed: closeUnused may have swept
		// already, so this connection is checked here.
		lc.closeIfUnused()
	}
	return lc, nil
}

func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	l.open--
	if c != nil {
		delete(l.conns, c)
	}
	l.mu.Unlock()
	l.cond.Signal()
}

// Close stops the listener, wakes an Accept waiting for a slot and closes
// the connections that never carried a request.
func (l *connLimiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cond.Broadcast()
	err := l.Listener.Close()
	l.closeUnused()
	return err
}

// closeUnused closes the open connections on which no byte has arrived.
//
// Clients open such connections routinely: Go's Transport, racing a dial
// against a connection being freed, parks the dialed one unused. A
// connection with nothing read and nothing waiting in the socket holds no
// request, so closing it is what closing an idle keep-alive connection is;
// a drain need not wait for it. This runs on the raw socket, below the TLS
// and PROXY wrappers, where the server cannot look. Connections that read
// something (a TLS handshake, a PROXY header, part of a request head) are
// left to the server.
func (l *connLimiter) closeUnused() {
	l.mu.Lock()
	conns := make([]*limitedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.closeIfUnused()
	}
}

// queued is how many connections wait in the kernel's accept queue, when
// the system tells (Linux).
func (l *connLimiter) queued() (int, bool) {
	sc, ok := l.Listener.(syscall.Conn)
	if !ok {
		return 0, false
	}
	return sockopt.AcceptQueue(sc)
}

// wake re-checks waiting Accepts after the bound changed.
func (l *connLimiter) wake() { l.cond.Broadcast() }

// limitedConn gives its slot back once, on the first Close, and notes
// whether anything was ever read from it.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	done atomic.Bool
	used atomic.Bool
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.used.Load() {
		c.used.Store(true)
	}
	return n, err
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.done.CompareAndSwap(false, true) {
		c.l.release(c)
	}
	return err
}

// closeIfUnused closes c if nothing was read from it and nothing is
// waiting to be read. A byte that arrives between the check and the close
// is lost as it would be on any idle connection being closed.
func (c *limitedConn) closeIfUnused() {
	if c.used.Load() || c.done.Load() || pending(c.Conn) {
		return
	}
	c.Close()
}

// pending reports whether bytes (or an EOF) wait in nc's receive buffer,
// without consuming them. It says true when it cannot tell.
func pending(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	waiting := true
	var buf [1]byte
	// Control, not Read: the server's goroutine may be blocked reading this
	// connection and holds its read lock; the peek does not block.
	err = raw.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		waiting = !(n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK))
	})
	return waiting || err != nil
}

// CloseWrite passes a half-close on, which tunnels rely on.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// maxConns is the listener's current bound on open connections.
func (l *listener) maxConns() int {
	if t := l.table.Load(); t != nil {
		return t.maxConns
	}
	return 0
}

var (
	descMaxConnsReached = prometheus.NewDesc("strata_l7_max_conns_reached_total",
		"Times a listener reached its max_conns and stopped accepting; new connections then wait in the kernel's accept queue.", []string{"listener"}, nil)
	descAcceptQueue = prometheus.NewDesc("strata_l7_accept_queue",
		"Connections waiting in a listener's accept queue now (Linux only).", []string{"listener"}, nil)
)

// limitsCollector reads the listeners' bounds at scrape time, so that a
// listener a reload removed has no series left.
type limitsCollector struct{ s *Server }

func (c limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMaxConnsReached
	ch <- descAcceptQueue
}

func (c limitsCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	ls := make([]*listener, 0, len(c.s.listeners))
	for _, l := range c.s.listeners {
		ls = append(ls, l)
	}
	c.s.mu.Unlock()
	for _, l := range ls {
		ch <- prometheus.MustNewConstMetric(descMaxConnsReached, prometheus.CounterValue, float64(l.conns.reached.Load()), l.name)
		if n, ok := l.conns.queued(); ok {
			ch <- prometheus.MustNewConstMetric(descAcceptQueue, prometheus.GaugeValue, float64(n), l.name)
		}
	}
}
