package l7

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newPool makes a pool over addrs with weight 1 each, balanced by rr.
func newPool(tb testing.TB, name string, addrs ...string) *upstream.Pool {
	tb.Helper()
	specs := make([]upstream.Spec, len(addrs))
	for i, a := range addrs {
		specs[i] = upstream.Spec{Addr: a, Weight: 1}
	}
	return newPoolSpecs(tb, name, "rr", specs)
}

func newPoolSpecs(tb testing.TB, name, lb string, specs []upstream.Spec) *upstream.Pool {
	tb.Helper()
	builder, err := balance.Builder(lb, balance.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	p := upstream.NewPool(name, upstream.Options{Builder: builder})
	if err := p.Update(specs); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

func shutdown(tb testing.TB, s *Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		tb.Errorf("shutdown: %v", err)
	}
}

// backend is a real net/http server on 127.0.0.1:0 that counts the
// connections it accepts.
type backend struct {
	addr  string
	srv   *http.Server
	conns atomic.Int64
}

func startBackend(tb testing.TB, h http.Handler) *backend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String()}
	b.srv = &http.Server{Handler: h, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			b.conns.Add(1)
		}
	}}
	go b.srv.Serve(ln)
	tb.Cleanup(func() { b.srv.Close() })
	return b
}

// named answers every request with its name, for routing tests.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
	})
}

// startProxy applies one listener on 127.0.0.1:0 with routes over pools.
func startProxy(tb testing.TB, opts Options, routes []config.Route, pools map[string]*upstream.Pool) (*Server, string) {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s := NewServer(opts)
	cfg := &config.L7{Listeners: []config.Listener{{Name: "test", Listen: "127.0.0.1:0", Routes: routes}}}
	if err := s.Apply(cfg, pools); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, s) })
	return s, "http://" + s.Addrs()[0].String()
}

// get does one GET with an optional Host and returns status, body and
// header.
func get(tb testing.TB, c *http.Client, url, host string) (int, string, http.Header) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("GET %s (host %q): %v", url, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("reading body of %s: %v", url, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// eventually polls cond every few milliseconds until it holds or the
// deadline passes.
func eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type countingReporter struct{ ok, failed atomic.Int64 }

func (r *countingReporter) Success(*upstream.Backend) { r.ok.Add(1) }
func (r *countingReporter) Failure(*upstream.Backend) { r.failed.Add(1) }
