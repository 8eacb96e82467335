package l7

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// TestCloseSkipsUnusedConnections: a client connection that never sent a
// byte must not hold up Shutdown or the drain of a removed listener
// (net/http alone waits until it is 5 s old), while a request sent on a
// fresh connection still gets its answer.
func TestCloseSkipsUnusedConnections(t *testing.T) {
	tests := []struct {
		desc   string
		remove bool // drain by an Apply that removes the listener, else Shutdown
	}{
		{desc: "shutdown"},
		{desc: "listener removed by apply", remove: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			release := make(chan struct{})
			be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-release
				io.WriteString(w, "done")
			}))
			pools := map[string]*upstream.Pool{"a": newPool(t, "a", be.addr)}
			s := NewServer(Options{Logger: quietLogger()})
			cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "a"}}}}}
			if err := s.Apply(cfg, pools); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Shutdown(context.Background()) })
			addr := s.Addrs()[0].String()

			unused, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer unused.Close()
			// A request in flight on a fresh connection must finish.
			busy, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			if _, err := io.WriteString(busy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "the request at the backend", func() bool { return be.conns.Load() == 1 })

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				if !tc.remove {
					done <- s.Shutdown(ctx)
					return
				}
				other := &config.L7{Listeners: []config.Listener{{Listen: freeAddr(t), Routes: []config.Route{{Pool: "a"}}}}}
				if err := s.Apply(other, pools); err != nil {
					done <- err
					return
				}
				s.draining.Wait()
				done <- nil
			}()
			// The unused connection is closed at once: a read sees EOF.
			unused.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, err := unused.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("unused connection: read %d bytes, err %v; want EOF", n, err)
			}
			close(release)
			resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
			if err != nil {
				t.Fatalf("request in flight: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "done" {
				t.Fatalf("request in flight: %d %q", resp.StatusCode, body)
			}
			busy.Close()
			if err := <-done; err != nil {
				t.Fatalf("closing: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("closing took %v; an unused connection held it up", d)
			}
		})
	}
}

// TestShutdownEndsH2CUpgrades: a connection upgraded to h2c is hijacked
// from net/http, whose Shutdown forgets it; strata's must still end it
// (GOAWAY, then close) instead of leaving it served after Shutdown.
func TestShutdownEndsH2CUpgrades(t *testing.T) {
	pools := map[string]*upstream.Pool{"a": newPool(t, "a", startBackend(t, named("a")).addr)}
	s := NewServer(Options{Logger: quietLogger()})
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", H2C: true, Routes: []config.Route{{Pool: "a"}}}}}
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The Upgrade request, then the client preface and an empty SETTINGS
	// frame, as curl --http2 sends them.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, br) // the answer to the upgraded request, GOAWAY, then EOF
		close(closed)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("the h2c connection is still open after Shutdown returned")
	}
}
