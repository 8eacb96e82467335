package l7

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/netpark"
)

// listenerServer returns the h1Server of s's only listener.
func listenerServer(s *Server) *h1Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		return l.srv
	}
	return nil
}

// parkedConns counts the server's connections that wait in its parker.
func parkedConns(srv *h1Server) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	n := 0
	for c := range srv.conns {
		if c.park.State.Load() == netpark.Parked {
			n++
		}
	}
	return n
}

// TestH1IdleConnsParkWithoutGoroutines: keep-alive connections idle past
// idleRelease wait in the server's epoll set and hold no goroutine; each
// serves its next request, parks again, closes when its client hangs up,
// and a graceful shutdown closes the rest at once.
func TestH1IdleConnsParkWithoutGoroutines(t *testing.T) {
	shortIdleRelease(t)
	reg := prometheus.NewRegistry()
	// A keep-alive timeout far longer than the test, so that only the
	// events under test close connections.
	s, addr, _ := startH1Proxy(t, Options{Registry: reg}, config.Listener{KeepaliveTimeout: config.Duration(time.Minute)})
	srv := listenerServer(s)
	active := func() float64 {
		return metricValue(t, reg, "strata_l7_connections_active", map[string]string{"listener": "test"})
	}
	base := runtime.NumGoroutine()
	const n = 500
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
		conns[i].send("GET /uri?n=" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: a\r\n\r\n")
		if r := conns[i].read("GET"); r.StatusCode != 200 {
			t.Fatalf("connection %d: status %d", i, r.StatusCode)
		}
	}
	// The parker's dispatcher and sweeper, the backend's goroutines for
	// the proxy's pooled connections and a few that come and go: far
	// fewer than one per client connection.
	want := base + 30
	parked := func(what string, k int) {
		t.Helper()
		eventually(t, 10*time.Second, what, func() bool {
			return parkedConns(srv) == k && runtime.NumGoroutine() <= want
		})
	}
	parked("every idle connection parked and its goroutine gone", n)
	if got := srv.idleReleases.Load(); got < n {
		t.Fatalf("idleReleases = %d after %d connections parked", got, n)
	}

	// Each parked connection serves its next request, and parks again.
	for i, rc := range conns {
		rc.send("GET /uri?again=" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: a\r\n\r\n")
		if r := rc.read("GET"); r.StatusCode != 200 || !strings.Contains(string(r.body), "again="+strconv.Itoa(i)) {
			t.Fatalf("connection %d after parking: %d %q", i, r.StatusCode, r.body)
		}
	}
	parked("the connections parked a second time", n)

	// A client that hangs up wakes its parked connection, which closes.
	const gone = 100
	for _, rc := range conns[:gone] {
		rc.nc.Close()
	}
	eventually(t, 10*time.Second, "the hung-up connections closed", func() bool {
		return active() == n-gone && parkedConns(srv) == n-gone
	})

	// A graceful shutdown closes the parked connections at once.
	start := time.Now()
	shutdown(t, s)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v with %d parked connections", d, n-gone)
	}
	for i, rc := range conns[gone:] {
		if !rc.closed() {
			t.Fatalf("parked connection %d still open after shutdown", gone+i)
		}
	}
	if v := active(); v != 0 {
		t.Errorf("strata_l7_connections_active = %v after shutdown, want 0", v)
	}
}

// TestH1ParkedConnIdleTimeout: the sweeper closes a parked connection at
// its keepalive_timeout, not before, and it is counted closed.
func TestH1ParkedConnIdleTimeout(t *testing.T) {
	shortIdleRelease(t)
	reg := prometheus.NewRegistry()
	const keepalive = 400 * time.Millisecond
	s, addr, _ := startH1Proxy(t, Options{Registry: reg}, config.Listener{KeepaliveTimeout: config.Duration(keepalive)})
	srv := listenerServer(s)
	rc := dialRaw(t, addr)
	rc.send("GET /uri HTTP/1.1\r\nHost: a\r\n\r\n")
	if r := rc.read("GET"); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	start := time.Now()
	eventually(t, 5*time.Second, "the idle connection to park", func() bool { return parkedConns(srv) == 1 })
	closedWithin(t, rc, 5*time.Second)
	if d := time.Since(start); d < keepalive*3/4 || d > keepalive+2*time.Second {
		t.Fatalf("the parked connection closed %v after its answer, keepalive_timeout %v", d, keepalive)
	}
	eventually(t, 5*time.Second, "the timed-out connection counted closed", func() bool {
		return metricValue(t, reg, "strata_l7_connections_active", map[string]string{"listener": "test"}) == 0 && parkedConns(srv) == 0
	})
}

// TestH1ParksOnlyPlaintext: a connection read through a layer of its own
// (TLS, a PROXY header) may hold bytes read ahead in that layer, where a
// readiness of its socket cannot see them, so it never parks (waitIdle
// parks only what plainSocket finds); a plaintext one does.
func TestH1ParksOnlyPlaintext(t *testing.T) {
	cert := writeCert(t, t.TempDir(), "a", 1, "a.test")
	tests := []struct {
		desc  string
		ln    config.Listener
		open  func(nc net.Conn) net.Conn // what the client speaks through
		plain bool
	}{
		{desc: "plaintext", open: func(nc net.Conn) net.Conn { return nc }, plain: true},
		{desc: "TLS", ln: config.Listener{TLS: &config.ListenerTLS{Certificates: []config.Certificate{cert}}},
			open: func(nc net.Conn) net.Conn {
				return tls.Client(nc, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			}},
		{desc: "PROXY protocol", ln: config.Listener{ProxyProtocol: &config.ProxyProtocol{Allow: []string{"127.0.0.1"}, Timeout: config.Duration(time.Second)}},
			open: func(nc net.Conn) net.Conn {
				io.WriteString(nc, "PROXY TCP4 203.0.113.7 127.0.0.1 4000 80\r\n")
				return nc
			}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			s, addr, _ := startH1Proxy(t, Options{}, tc.ln)
			srv := listenerServer(s)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			rc := &rawConn{t: t, nc: tc.open(nc)}
			rc.br = bufio.NewReader(rc.nc)
			rc.send("GET /uri HTTP/1.1\r\nHost: a\r\n\r\n")
			if r := rc.read("GET"); r.StatusCode != 200 {
				t.Fatalf("status %d", r.StatusCode)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.conns) != 1 {
				t.Fatalf("%d connections on the server, want 1", len(srv.conns))
			}
			for c := range srv.conns {
				if got := c.plainSocket() != nil; got != tc.plain {
					t.Errorf("parks: %v, want %v", got, tc.plain)
				}
			}
		})
	}
}

// TestH1ParkedConnClose: Close (a shutdown out of time) closes a parked
// connection at once and counts it closed.
func TestH1ParkedConnClose(t *testing.T) {
	shortIdleRelease(t)
	reg := prometheus.NewRegistry()
	s, addr, _ := startH1Proxy(t, Options{Registry: reg}, config.Listener{})
	srv := listenerServer(s)
	rc := dialRaw(t, addr)
	rc.send("GET /uri HTTP/1.1\r\nHost: a\r\n\r\n")
	if r := rc.read("GET"); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	eventually(t, 5*time.Second, "the idle connection to park", func() bool { return parkedConns(srv) == 1 })
	srv.Close()
	if !rc.closed() {
		t.Fatal("the parked connection is still open after Close")
	}
	eventually(t, 5*time.Second, "the closed connection counted closed", func() bool {
		return metricValue(t, reg, "strata_l7_connections_active", map[string]string{"listener": "test"}) == 0
	})
}

// TestH1ParkedNewConnShutdown: a connection that never sent a byte parks
// too, and a graceful shutdown still ends it at once. The listener's
// close shuts such connections' sockets (closeUnused), which tells the
// parker nothing; the server takes them over.
func TestH1ParkedNewConnShutdown(t *testing.T) {
	shortIdleRelease(t)
	reg := prometheus.NewRegistry()
	s, addr, _ := startH1Proxy(t, Options{Registry: reg}, config.Listener{})
	srv := listenerServer(s)
	rc := dialRaw(t, addr)
	eventually(t, 5*time.Second, "the silent new connection to park", func() bool { return parkedConns(srv) == 1 })
	start := time.Now()
	shutdown(t, s)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v with one parked new connection", d)
	}
	if !rc.closed() {
		t.Error("the parked new connection is still open after shutdown")
	}
	if v := metricValue(t, reg, "strata_l7_connections_active", map[string]string{"listener": "test"}); v != 0 {
		t.Errorf("strata_l7_connections_active = %v after shutdown, want 0", v)
	}
}

// shortIdleRelease makes idle keep-alive connections give back their
// buffers, and park, after 30 ms for the rest of the test.
func shortIdleRelease(t *testing.T) {
	old := idleRelease
	idleRelease = 30 * time.Millisecond
	t.Cleanup(func() { idleRelease = old })
}
