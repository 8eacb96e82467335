package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/registry"
	"github.com/strata-lb/strata/internal/upstream"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startRegistry starts a real single-node registry on loopback with short
// heartbeat timings, so expiry shows within a test's patience.
func startRegistry(t testing.TB) *registry.Node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := registry.Start(ln, registry.Options{
		RaftAddr:      "127.0.0.1:0",
		Liveness:      registry.LivenessOptions{Interval: 100 * time.Millisecond, UnhealthyAfter: 400 * time.Millisecond, RemoveAfter: 2 * time.Second},
		SweepInterval: 50 * time.Millisecond,
		Logger:        quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Close is idempotent, so tests that stop the registry early
		// may.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	waitFor(t, 5*time.Second, "registry leader", n.Serving)
	return n
}

// register registers one ephemeral instance with a single PUT and no
// heartbeats, as an instance that dies right after would.
func register(t testing.TB, reg, service, ip string, port int, cluster string, md map[string]string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"service": service, "ip": ip, "port": port, "cluster": cluster, "metadata": md})
	req, _ := http.NewRequest(http.MethodPut, "http://"+reg+"/v1/registry/instances", bytes.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("register: %s: %s", res.Status, b)
	}
}

func newPool(t testing.TB, name string) *upstream.Pool {
	t.Helper()
	b, err := balance.Builder("wrr", balance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := upstream.NewPool(name, upstream.Options{Builder: b})
	t.Cleanup(p.Close)
	return p
}

// names returns the pool's backend names, in order.
func names(p *upstream.Pool) []string {
	var out []string
	for _, b := range p.Snapshot().All {
		out = append(out, b.Name)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
