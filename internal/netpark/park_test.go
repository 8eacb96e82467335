package netpark

import (
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// conn is a parked thing for the tests: Resume reports on a channel.
type conn struct {
	it      Item
	resumed chan struct{}
}

func (c *conn) Resume() { c.resumed <- struct{}{} }

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

func rawOf(t *testing.T, c syscall.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func waitResumed(t *testing.T, c *conn, what string) {
	t.Helper()
	select {
	case <-c.resumed:
	case <-time.After(5 * time.Second):
		t.Fatalf("not resumed %s", what)
	}
}

func notResumed(t *testing.T, c *conn, what string) {
	t.Helper()
	select {
	case <-c.resumed:
		t.Fatalf("resumed %s", what)
	case <-time.After(50 * time.Millisecond):
	}
}

// A parked socket resumes once per park on data, again after re-arming
// with data still queued, on a hang-up, and never while it runs.
func TestParkResume(t *testing.T) {
	pk, err := New("test-parker")
	if err != nil {
		t.Fatal(err)
	}
	defer pk.Close()
	client, server := pair(t)
	c := &conn{resumed: make(chan struct{}, 4)}
	c.it.Init(c)
	rc := rawOf(t, server)
	if !c.it.Park(pk, rc) {
		t.Fatal("Park on an open socket reported it still the caller's")
	}
	notResumed(t, c, "with nothing sent")
	client.Write([]byte("x"))
	waitResumed(t, c, "after a byte")
	if s := c.it.State.Load(); s != Running {
		t.Fatalf("state %d after resume, want Running", s)
	}
	// The byte is still queued: re-arming reports it at once
	// (level-triggered), and once only (one-shot).
	if !c.it.Park(pk, rc) {
		t.Fatal("second Park failed")
	}
	waitResumed(t, c, "re-armed with a byte queued")
	notResumed(t, c, "twice for one arming")
	var b [1]byte
	server.Read(b[:])
	if !c.it.Park(pk, rc) {
		t.Fatal("third Park failed")
	}
	client.Close()
	waitResumed(t, c, "after the peer closed")
	c.it.State.Store(Done)
	c.it.Forget()
	if pk.slots.get(int(c.it.fd)) != nil {
		t.Fatal("Forget left the item in the table")
	}
}

// An owner takes a parked item over by moving it to Done; its socket's
// later events are dropped. Park on a closed socket, or on a closed
// parker, leaves the item the caller's.
func TestParkTakeOverAndFailures(t *testing.T) {
	pk, err := New("test-parker")
	if err != nil {
		t.Fatal(err)
	}
	client, server := pair(t)
	c := &conn{resumed: make(chan struct{}, 4)}
	c.it.Init(c)
	if !c.it.Park(pk, rawOf(t, server)) {
		t.Fatal("Park failed")
	}
	if !c.it.State.CompareAndSwap(Parked, Done) {
		t.Fatal("the owner could not take the parked item over")
	}
	client.Write([]byte("x"))
	notResumed(t, c, "after the owner took it over")
	c.it.Forget()

	_, closed := pair(t)
	crc := rawOf(t, closed)
	closed.Close()
	d := &conn{resumed: make(chan struct{}, 1)}
	d.it.Init(d)
	if d.it.Park(pk, crc) || d.it.State.Load() != Running {
		t.Fatal("Park on a closed socket did not leave the item Running with the caller")
	}
	pk.Close()
	_, open := pair(t)
	e := &conn{resumed: make(chan struct{}, 1)}
	e.it.Init(e)
	if e.it.Park(pk, rawOf(t, open)) || e.it.State.Load() != Running {
		t.Fatal("Park on a closed parker did not leave the item Running with the caller")
	}
}
