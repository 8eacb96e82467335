package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/registry"
	"github.com/strata-lb/strata/pkg/client"
)

func startRegistry(t *testing.T) *registry.Node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := registry.Start(ln, registry.Options{RaftAddr: "127.0.0.1:0", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	waitFor(t, "leader", n.IsLeader)
	return n
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegisterSubscribePickDeregister(t *testing.T) {
	n := startRegistry(t)
	ctx := context.Background()
	app, err := client.New(client.Config{Servers: []string{n.ID()}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		if err := app.Register(ctx, "orders", client.Instance{IP: ip, Port: 8080}); err != nil {
			t.Fatal(err)
		}
	}
	caller, err := client.New(client.Config{Servers: []string{"127.0.0.1:1", n.ID()}, Algorithm: "rr", CacheDir: t.TempDir(), MaxFails: 2, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close(ctx)
	var mu sync.Mutex
	var last []client.Instance
	caller.Subscribe("orders", func(ins []client.Instance) {
		mu.Lock()
		last = ins
		mu.Unlock()
	})
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		ep, err := caller.Pick(ctx, "orders", 0)
		if err != nil {
			t.Fatal(err)
		}
		seen[ep.Addr()]++
		caller.Done(ep, nil)
	}
	if seen["127.0.0.1:8080"] != 5 || seen["127.0.0.2:8080"] != 5 {
		t.Fatalf("round robin picks: %v", seen)
	}
	// Two failures eject 127.0.0.1 passively: every pick goes to .2.
	for i := 0; i < 2; i++ {
		for {
			ep, _ := caller.Pick(ctx, "orders", 0)
			if ep.Addr() == "127.0.0.1:8080" {
				caller.Done(ep, errors.New("refused"))
				break
			}
			caller.Done(ep, nil)
		}
	}
	for i := 0; i < 4; i++ {
		ep, _ := caller.Pick(ctx, "orders", 0)
		if ep.Addr() != "127.0.0.2:8080" {
			t.Fatalf("picked the ejected instance")
		}
		caller.Done(ep, nil)
	}
	// Close deregisters: the subscriber sees the service empty.
	if err := app.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subscriber to see the deregistration", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last != nil && len(last) == 0
	})
	if _, err := caller.Pick(ctx, "orders", 0); !errors.Is(err, client.ErrNoInstance) {
		t.Fatalf("pick on an empty service: %v", err)
	}
}

// TestCacheWhenServersDown: a caller that starts while every registry
// server is down picks from its disk cache.
func TestCacheWhenServersDown(t *testing.T) {
	n := startRegistry(t)
	ctx := context.Background()
	dir := t.TempDir()
	app, _ := client.New(client.Config{Servers: []string{n.ID()}, Logger: quiet()})
	// Close stops the heartbeats; its deregistration, after the registry
	// is gone, fails and does not matter.
	defer app.Close(ctx)
	app.Register(ctx, "pay", client.Instance{IP: "127.0.0.9", Port: 80, Metadata: map[string]string{"v": "2"}})
	c1, _ := client.New(client.Config{Servers: []string{n.ID()}, CacheDir: dir, Logger: quiet()})
	if ins, err := c1.Instances(ctx, "pay"); err != nil || len(ins) != 1 {
		t.Fatalf("instances: %v %v", ins, err)
	}
	c1.Close(ctx)
	n.Kill()

	c2, _ := client.New(client.Config{Servers: []string{n.ID()}, CacheDir: dir, Algorithm: "maglev", Logger: quiet()})
	defer c2.Close(ctx)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ep, err := c2.Pick(cctx, "pay", 42)
	if err != nil || ep.Addr() != "127.0.0.9:80" || ep.Metadata()["v"] != "2" {
		t.Fatalf("pick from cache: %v %v", ep, err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := client.New(client.Config{}); err == nil {
		t.Error("no servers accepted")
	}
	if _, err := client.New(client.Config{Servers: []string{"x:1"}, Algorithm: "nope"}); err == nil {
		t.Error("unknown algorithm accepted")
	}
}

// TestToken: against a registry with an admin token, an SDK with its
// namespace's token registers, beats and queries; one without a token
// registers nothing and cannot read the namespace.
func TestToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := registry.Start(ln, registry.Options{RaftAddr: "127.0.0.1:0", Logger: quiet(),
		AdminToken: "adm", NamespaceTokens: map[string]string{"prod": "p-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	waitFor(t, "leader", n.IsLeader)
	ctx := context.Background()

	anon, _ := client.New(client.Config{Servers: []string{n.ID()}, Namespace: "prod", Logger: quiet()})
	defer anon.Close(ctx)
	if err := anon.Register(ctx, "orders", client.Instance{IP: "127.0.0.1", Port: 8080}); err == nil {
		t.Fatal("an SDK without a token registered")
	}
	app, _ := client.New(client.Config{Servers: []string{n.ID()}, Namespace: "prod", Token: "p-secret", Logger: quiet()})
	defer app.Close(ctx)
	if err := app.Register(ctx, "orders", client.Instance{IP: "127.0.0.1", Port: 8080}); err != nil {
		t.Fatalf("register with the namespace token: %v", err)
	}
	ep, err := app.Pick(ctx, "orders", 0)
	if err != nil || ep.Addr() != "127.0.0.1:8080" {
		t.Fatalf("pick with the namespace token: %v %v", ep, err)
	}
	app.Done(ep, nil)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if ins, err := anon.Instances(cctx, "orders"); err == nil {
		t.Fatalf("an SDK without a token read the namespace: %v", ins)
	}
}

// TestRegisterAfterClose: a closed client registers nothing, and so starts
// no heartbeats that nothing would stop (TestMain's goleak would see them).
func TestRegisterAfterClose(t *testing.T) {
	n := startRegistry(t)
	ctx := context.Background()
	c, err := client.New(client.Config{Servers: []string{n.ID()}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, "late", client.Instance{IP: "127.0.0.1", Port: 81}); err == nil {
		t.Fatal("Register on a closed client succeeded")
	}
	if ins, err := c.Instances(ctx, "late"); err == nil {
		t.Fatalf("Instances on a closed client: %v", ins)
	}
}
