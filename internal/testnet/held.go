package testnet

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Held is a TCP server on one loopback port that a test can stop (so
// connections are refused, as from a dead backend) and start again on the
// same port. The port is held for the whole test by a second socket bound
// to it with SO_REUSEPORT that never listens: while the server is
// stopped, no other socket without SO_REUSEPORT — another test's listener,
// on this machine or in this process — can be handed the port and answer
// in its place, as can happen after a plain listener is closed.
type Held struct {
	t    testing.TB
	addr string
	ln   net.Listener
}

// NewHeld starts a server on a free port of the IPv4 address host that
// accepts connections and closes them.
func NewHeld(t testing.TB, host string) *Held {
	t.Helper()
	h, err := holdAt(t, host, 0)
	if err != nil {
		t.Fatalf("binding %s: %v", host, err)
	}
	return h
}

// TryHeld is NewHeld on a given port of host; it returns nil when the port
// is taken.
func TryHeld(t testing.TB, host string, port int) *Held {
	t.Helper()
	h, err := holdAt(t, host, port)
	if err != nil {
		return nil
	}
	return h
}

func holdAt(t testing.TB, host string, port int) (*Held, error) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	sa := &syscall.SockaddrInet4{Port: port}
	copy(sa.Addr[:], net.ParseIP(host).To4())
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	t.Cleanup(func() { syscall.Close(fd) })
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	h := &Held{t: t, addr: net.JoinHostPort(host, strconv.Itoa(bound.(*syscall.SockaddrInet4).Port))}
	h.Start()
	t.Cleanup(h.Stop)
	return h, nil
}

// Addr is host:port.
func (h *Held) Addr() string { return h.addr }

// Start listens again (after Stop).
func (h *Held) Start() {
	h.t.Helper()
	if h.ln != nil {
		return
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", h.addr)
	if err != nil {
		h.t.Fatalf("listening again on %s, which the test holds: %v", h.addr, err)
	}
	h.ln = ln
	go ServeClose(ln)
}

// Stop closes the listener: connections are refused until Start.
func (h *Held) Stop() {
	if h.ln != nil {
		h.ln.Close()
		h.ln = nil
	}
}

// ServeClose accepts connections on ln and closes each at once, until ln
// is closed: a backend that is up, for checks that only connect.
func ServeClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
