package l7

import (
	"io"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// closedWithin reads rc until the server closes it and returns how long
// that took; it fails the test when the connection is still open after
// limit.
func closedWithin(t *testing.T, rc *rawConn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	rc.nc.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, rc.br)
	if err != nil && !isReset(err) {
		t.Fatalf("connection still open after %v: %v", limit, err)
	}
	return time.Since(start)
}

// TestClientTimeoutsConfigured: client_header_timeout and
// keepalive_timeout come from the listener's config and change with a
// reload, for the connections and requests that follow it.
func TestClientTimeoutsConfigured(t *testing.T) {
	hb := startH1Backend(t)
	pools := map[string]*upstream.Pool{"p": newPool(t, "p", hb.addr)}
	s := NewServer(Options{Logger: quietLogger()})
	ln := config.Listener{Name: "test", Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "p"}}}
	if err := s.Apply(&config.L7{Listeners: []config.Listener{ln}}, pools); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, s) })
	addr := s.Addrs()[0].String()
	ln.Listen = addr
	// Opened under the defaults (10s and 60s, longer than the test waits
	// below), the listener takes short timeouts from a reload.
	const short = 300 * time.Millisecond
	ln.ClientHeaderTimeout = config.Duration(short)
	ln.KeepaliveTimeout = config.Duration(short)
	if err := s.Apply(&config.L7{Listeners: []config.Listener{ln}}, pools); err != nil {
		t.Fatal(err)
	}

	// A head sent in part and never finished.
	rc := dialRaw(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n")
	if d := closedWithin(t, rc, 3*time.Second); d < short*3/4 {
		t.Fatalf("closed %v after an unfinished head, before client_header_timeout (%v)", d, short)
	}

	// A keep-alive connection that sends nothing after its first answer.
	rc = dialRaw(t, addr)
	rc.send("GET /uri HTTP/1.1\r\nHost: a\r\n\r\n")
	if r := rc.read("GET"); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	if d := closedWithin(t, rc, 3*time.Second); d < short*3/4 {
		t.Fatalf("closed %v after its answer, before keepalive_timeout (%v)", d, short)
	}
}
