package l7

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"
)

// A client that gives up on a slow backend (a closed browser tab, a
// timed-out caller) should not leave the backend working for nobody.
// nginx notices the close and ends the upstream request, logging 499; so
// does strata while it waits for a backend's response head: it watches
// the backend in slices of clientCheckEvery and, between them, peeks at
// the client's socket. A response that comes within the first slice,
// nearly all of them, costs two deadline updates and no system call.

// clientCheckEvery is how often a client is looked at while its backend
// is silent. A variable for tests.
var clientCheckEvery = time.Second

// statusClientClosed is nginx's 499: the client closed the connection
// before the response began.
const statusClientClosed = 499

// errClientLeft is the end of an exchange whose client went away.
var errClientLeft = errors.New("client closed the connection before the response")

// clientProber is a ResponseWriter that can tell whether its client has
// closed the connection (h1Writer; the recorder passes it on).
type clientProber interface {
	clientGone() bool
}

// awaitHead waits for the first byte of the backend's response until the
// connection's deadline, as readResponseHead would, but returns
// errClientLeft as soon as the client is seen gone. Other errors are left
// for readResponseHead to meet and classify.
func awaitHead(w any, c *upConn) error {
	p, ok := w.(clientProber)
	if !ok || c.br.Buffered() > 0 {
		return nil
	}
	defer c.nc.SetReadDeadline(c.deadline)
	for {
		now := time.Now()
		if c.deadline.Sub(now) <= clientCheckEvery {
			return nil // the last stretch is readResponseHead's own
		}
		c.nc.SetReadDeadline(now.Add(clientCheckEvery))
		_, err := c.br.Peek(1)
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			return nil // the head began, or an error readResponseHead will meet
		}
		if p.clientGone() {
			return errClientLeft
		}
	}
}

// clientGone reports whether the client has closed its side of the
// connection (or reset it), by peeking at its socket without blocking.
// Bytes waiting (a pipelined request) or nothing at all mean it is still
// there; so does anything that cannot be told. A client found gone gets
// nothing more written, and its connection closes.
func (w *h1Writer) clientGone() bool {
	sc := socketOf(w.c.nc)
	if sc == nil {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var buf [1]byte
	raw.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = n == 0 && err == nil || err == syscall.ECONNRESET
	})
	if gone {
		w.failed, w.closeAfter = true, true
	}
	return gone
}

// socketOf unwraps a client connection (limit, PROXY protocol, TLS) to
// the socket under it.
func socketOf(c net.Conn) syscall.Conn {
	for range 8 {
		switch x := c.(type) {
		case *limitedConn:
			c = x.Conn
		case *tls.Conn:
			c = x.NetConn()
		case bufferedConn:
			c = x.Conn
		case interface{ Raw() net.Conn }: // go-proxyproto
			c = x.Raw()
		case syscall.Conn:
			return x
		default:
			return nil
		}
	}
	return nil
}

// clientGone passes the question to the writer under the recorder.
func (rec *recorder) clientGone() bool {
	p, ok := rec.w.(clientProber)
	return ok && p.clientGone()
}
