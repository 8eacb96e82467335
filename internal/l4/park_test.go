package l4

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// startParkingServer is startServer with directions that park after
// 20ms of quiet instead of the default, set before any connection.
func startParkingServer(t *testing.T, pools map[string]*upstream.Pool, svcs ...config.L4Service) *Server {
	t.Helper()
	s, err := NewServer(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if s.parker == nil {
		t.Fatal("no parker: the kernel refused an epoll set")
	}
	s.parkAfter = 20 * time.Millisecond
	if err := s.Apply(&config.L4{Services: svcs}, pools); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// Quiet connections hold no goroutine of the proxy's: both directions
// park in the epoll set, wake on the next byte, pass a FIN on, and
// Shutdown ends the ones still parked.
func TestIdleConnectionsParkWithoutGoroutines(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"))
	s := startParkingServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", nil))
	addr := addrOf(t, s, "web")
	base := runtime.NumGoroutine()
	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		_, conns[i] = dialName(t, addr)
		defer conns[i].Close()
		echo(t, conns[i], "first "+strconv.Itoa(i))
	}
	// The echo backend keeps one goroutine per connection; the proxy,
	// once its directions park, none. Two per connection (before
	// parking) would be 2n more.
	want := base + n + 3
	if !poll(func() bool { return runtime.NumGoroutine() <= want }) {
		t.Fatalf("%d goroutines with %d quiet connections, want at most %d (base %d)", runtime.NumGoroutine(), n, want, base)
	}
	for i, c := range conns {
		echo(t, c, "after parking "+strconv.Itoa(i))
	}
	if !poll(func() bool { return runtime.NumGoroutine() <= want }) {
		t.Fatalf("%d goroutines after the second exchange, want at most %d", runtime.NumGoroutine(), want)
	}
	// A FIN from a parked client reaches the backend, whose close
	// comes back as the end of the stream.
	c0 := conns[0].(*net.TCPConn)
	if err := c0.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c0.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(c0); err != nil || len(rest) != 0 {
		t.Fatalf("after the half-close: %q, %v; want the end of the stream", rest, err)
	}
	eventually(t, "the half-closed connection to leave the table", func() bool { return len(s.Conns(0)) == n-1 })
	st := s.Services()[0].Stats
	if st.Conns != n || st.ActiveConns != n-1 {
		t.Errorf("conns %d, active %d; want %d, %d", st.Conns, st.ActiveConns, n, n-1)
	}

	// Shutdown that runs out of time cuts the parked connections.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown with open connections returned before they closed")
	}
	if left := len(s.Conns(0)); left != 0 {
		t.Fatalf("%d connections left after Shutdown", left)
	}
	for _, c := range conns[1:] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client read data after Shutdown cut its connection")
		}
	}
}

// The idle timeout closes a connection whose directions are parked.
func TestIdleTimeoutClosesParkedConnection(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"))
	s := startParkingServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", func(sc *config.L4Service) {
		sc.Timeouts.TCP = config.Duration(300 * time.Millisecond)
	}))
	_, c := dialName(t, addrOf(t, s, "web"))
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("an idle connection stayed open past its timeout")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("closed after %v, before the 300ms idle timeout", d)
	}
	eventually(t, "the table to empty", func() bool { return len(s.Conns(0)) == 0 })
}
