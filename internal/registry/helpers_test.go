package registry

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// startNode starts a single-node registry on loopback.
func startNode(t *testing.T, o Options) *Node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.RaftAddr == "" {
		o.RaftAddr = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = 50 * time.Millisecond
	}
	n, err := Start(ln, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	waitFor(t, 5*time.Second, "leader", func() bool { return len(o.Join) > 0 || n.Serving() })
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
