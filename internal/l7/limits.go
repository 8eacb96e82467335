package l7

import (
	"net"
	"sync"
	"sync/atomic"
)

// connLimiter bounds a listener's open client connections. At the bound,
// Accept waits for one to close, leaving new connections in the kernel's
// accept queue (as HAProxy's maxconn does) rather than accepting and
// dropping them. The bound is read from the listener's current table, so
// a reload changes it for connections accepted afterwards.
type connLimiter struct {
	net.Listener
	max    func() int
	mu     sync.Mutex
	cond   *sync.Cond
	open   int
	closed bool
}

func limitConns(ln net.Listener, max func() int) *connLimiter {
	l := &connLimiter{Listener: ln, max: max}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// Accept waits until a connection may be taken, then accepts it.
func (l *connLimiter) Accept() (net.Conn, error) {
	l.mu.Lock()
	for {
		m := l.max()
		if l.closed || m <= 0 || l.open < m {
			break
		}
		l.cond.Wait()
	}
	l.open++
	l.mu.Unlock()
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

func (l *connLimiter) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
	l.cond.Signal()
}

// Close stops the listener and wakes an Accept waiting for a slot.
func (l *connLimiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cond.Broadcast()
	return l.Listener.Close()
}

// wake re-checks waiting Accepts after the bound changed.
func (l *connLimiter) wake() { l.cond.Broadcast() }

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	done atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.done.CompareAndSwap(false, true) {
		c.l.release()
	}
	return err
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
