package l7

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestReapClosesConnectionsTheBackendClosed: an idle backend connection
// whose backend closed it (the backend left the pool, or restarted) is
// closed by the next reap instead of staying in CLOSE_WAIT until the idle
// timeout, while an idle connection the backend keeps open stays pooled.
func TestReapClosesConnectionsTheBackendClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	cp := &connPool{addr: ln.Addr().String(), max: 8, lastPut: time.Now()}
	var d net.Dialer
	var conns, backs []net.Conn
	for range 2 {
		c, err := dialWith(context.Background(), &d, cp)
		if err != nil {
			t.Fatal(err)
		}
		cp.put(c, time.Now())
		conns = append(conns, c.nc)
		backs = append(backs, <-accepted)
	}
	defer backs[1].Close()

	// Nothing is old: a reap keeps both while the backend holds them open.
	if cp.reap(time.Now(), time.Hour); len(cp.idle) != 2 {
		t.Fatalf("a reap of two open idle connections left %d", len(cp.idle))
	}
	backs[0].Close()
	eventually(t, 5*time.Second, "a reap to close the connection its backend closed", func() bool {
		cp.reap(time.Now(), time.Hour)
		return len(cp.idle) == 1
	})
	if cp.idle[0].nc != conns[1] {
		t.Fatal("the reap closed the open connection and kept the closed one")
	}
	if _, err := conns[0].Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the reaped connection is not closed on this side: write: %v", err)
	}
}
