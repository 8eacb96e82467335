package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
	"github.com/strata-lb/strata/pkg/client"
)

func TestSpecs(t *testing.T) {
	in := func(ip string, port int, cluster string, w float64, healthy, enabled bool, md map[string]string) client.Instance {
		return client.Instance{IP: ip, Port: port, Cluster: cluster, Weight: w, Healthy: healthy, Enabled: enabled, Metadata: md}
	}
	v2 := map[string]string{"version": "2"}
	tests := []struct {
		desc string
		ins  []client.Instance
		cfg  config.PoolRegistry
		want []upstream.Spec
	}{
		{
			desc: "healthy instances become backends named ip:port, sorted, zone from cluster, tags from metadata, weight × 100",
			ins:  []client.Instance{in("127.0.0.2", 80, "b", 0.5, true, true, v2), in("127.0.0.1", 80, "a", 1, true, true, nil)},
			want: []upstream.Spec{
				{Name: "127.0.0.1:80", Addr: "127.0.0.1:80", Weight: 100, Zone: "a"},
				{Name: "127.0.0.2:80", Addr: "127.0.0.2:80", Weight: 50, Zone: "b", Tags: v2},
			},
		},
		{
			desc: "unhealthy and disabled instances are left out (a protected answer holds them)",
			ins:  []client.Instance{in("127.0.0.1", 80, "a", 1, false, true, nil), in("127.0.0.2", 80, "a", 1, true, false, nil), in("127.0.0.3", 80, "a", 1, true, true, nil)},
			want: []upstream.Spec{{Name: "127.0.0.3:80", Addr: "127.0.0.3:80", Weight: 100, Zone: "a"}},
		},
		{
			desc: "clusters keep only the named ones",
			ins:  []client.Instance{in("127.0.0.1", 80, "a", 1, true, true, nil), in("127.0.0.2", 80, "b", 1, true, true, nil), in("127.0.0.3", 80, "c", 1, true, true, nil)},
			cfg:  config.PoolRegistry{Clusters: []string{"c", "a"}},
			want: []upstream.Spec{{Name: "127.0.0.1:80", Addr: "127.0.0.1:80", Weight: 100, Zone: "a"}, {Name: "127.0.0.3:80", Addr: "127.0.0.3:80", Weight: 100, Zone: "c"}},
		},
		{
			desc: "a selector needs every pair; a missing key does not match an empty value",
			ins:  []client.Instance{in("127.0.0.1", 80, "a", 1, true, true, v2), in("127.0.0.2", 80, "a", 1, true, true, map[string]string{"version": "1"}), in("127.0.0.3", 80, "a", 1, true, true, nil)},
			cfg:  config.PoolRegistry{Selector: map[string]string{"version": "2"}},
			want: []upstream.Spec{{Name: "127.0.0.1:80", Addr: "127.0.0.1:80", Weight: 100, Zone: "a", Tags: v2}},
		},
		{
			desc: "weight 0 stays at 0, a tiny weight at 1, a huge one is capped",
			ins:  []client.Instance{in("127.0.0.1", 80, "a", 0, true, true, nil), in("127.0.0.2", 80, "a", 0.001, true, true, nil), in("127.0.0.3", 80, "a", 1e300, true, true, nil)},
			want: []upstream.Spec{{Name: "127.0.0.1:80", Addr: "127.0.0.1:80", Weight: 0, Zone: "a"}, {Name: "127.0.0.2:80", Addr: "127.0.0.2:80", Weight: 1, Zone: "a"}, {Name: "127.0.0.3:80", Addr: "127.0.0.3:80", Weight: 100000000, Zone: "a"}},
		},
		{
			desc: "one ip:port in two clusters is one backend",
			ins:  []client.Instance{in("127.0.0.1", 80, "a", 1, true, true, nil), in("127.0.0.1", 80, "b", 1, true, true, nil)},
			want: []upstream.Spec{{Name: "127.0.0.1:80", Addr: "127.0.0.1:80", Weight: 100, Zone: "a"}},
		},
		{desc: "no instances, no backends", want: []upstream.Spec{}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got := Specs(tc.ins, &tc.cfg)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Specs = %+v\nwant    %+v", got, tc.want)
			}
		})
	}
}

// TestProviderFollowsRegistry drives a pool from a real registry with real
// registrations: a register, a deregister and an instance whose heartbeats
// stop each reach the pool within a second, and when the registry goes
// away the pool keeps what it had.
func TestProviderFollowsRegistry(t *testing.T) {
	node := startRegistry(t)
	reg := node.ID()
	pool := newPool(t, "app")
	// The SDK logs each failed poll of the registry; the test counts them.
	polls := &countingHandler{msg: "registry client: following service"}
	p, err := Start(pool, config.PoolRegistry{Servers: []string{reg}, Namespace: "public", Group: "DEFAULT_GROUP", Service: "orders", Allow: []string{"127.0.0.0/8"}}, Options{Logger: slog.New(polls)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()

	// Instances that keep beating, through the SDK as an application would.
	app, err := client.New(client.Config{Servers: []string{reg}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(context.Background())
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		zone := "a"
		if i == 3 {
			zone = "b"
		}
		if err := app.Register(ctx, "orders", client.Instance{IP: "127.0.0.1", Port: 9000 + i, Cluster: zone, Metadata: map[string]string{"n": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"}
	waitFor(t, time.Second, "three registered instances in the pool", func() bool { return slices.Equal(names(pool), want) })
	select {
	case <-p.Ready():
	default:
		t.Fatal("Ready is not closed after the first answer")
	}
	if b := pool.Snapshot().Lookup("127.0.0.1:9003"); b.Zone != "b" || b.Tags["n"] != "3" || b.Weight != 100 {
		t.Errorf("backend 9003 = zone %q tags %v weight %d, want zone b, tag n=3, weight 100", b.Zone, b.Tags, b.Weight)
	}

	if err := app.Deregister(ctx, "orders", client.Instance{IP: "127.0.0.1", Port: 9002, Cluster: "a"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "the deregistered instance to leave the pool", func() bool {
		return slices.Equal(names(pool), []string{"127.0.0.1:9001", "127.0.0.1:9003"})
	})

	// One PUT and no heartbeat: healthy at first, unhealthy after 400ms.
	register(t, reg, "orders", "127.0.0.1", 9009, "a", nil)
	waitFor(t, time.Second, "the silent instance to join", func() bool { return pool.Snapshot().Lookup("127.0.0.1:9009") != nil })
	waitFor(t, 400*time.Millisecond+time.Second, "the silent instance to expire from the pool", func() bool {
		return pool.Snapshot().Lookup("127.0.0.1:9009") == nil
	})
	if got := names(pool); !slices.Equal(got, []string{"127.0.0.1:9001", "127.0.0.1:9003"}) {
		t.Fatalf("beating instances left with the silent one: %v", got)
	}

	// The registry goes away: the pool keeps its last backends.
	failed := polls.n.Load()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := node.Close(cctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "three failed polls of the SDK", func() bool { return polls.n.Load() >= failed+3 })
	if got := names(pool); !slices.Equal(got, []string{"127.0.0.1:9001", "127.0.0.1:9003"}) {
		t.Fatalf("with the registry gone the pool has %v, want its last backends", got)
	}
}

// TestProviderKeepsAdminChanges checks that a drain and a weight set on the
// pool (through the admin API, say) survive the next registry change, and
// that a weight changed at the registry still reaches other backends.
func TestProviderKeepsAdminChanges(t *testing.T) {
	node := startRegistry(t)
	reg := node.ID()
	pool := newPool(t, "app")
	p, err := Start(pool, config.PoolRegistry{Servers: []string{reg}, Namespace: "public", Group: "DEFAULT_GROUP", Service: "web", Allow: []string{"127.0.0.0/8"}}, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	register(t, reg, "web", "127.0.0.1", 1, "a", nil)
	register(t, reg, "web", "127.0.0.1", 2, "a", nil)
	waitFor(t, time.Second, "two backends", func() bool { return len(names(pool)) == 2 })
	if err := pool.SetState("127.0.0.1:1", upstream.StateDraining); err != nil {
		t.Fatal(err)
	}
	if err := pool.SetWeight("127.0.0.1:2", 7); err != nil {
		t.Fatal(err)
	}
	register(t, reg, "web", "127.0.0.1", 3, "a", nil)
	waitFor(t, time.Second, "the third backend", func() bool { return len(names(pool)) == 3 })
	s := pool.Snapshot()
	if b := s.Lookup("127.0.0.1:1"); b.State != upstream.StateDraining {
		t.Errorf("drained backend is %s after a registry change, want draining", b.State)
	}
	if b := s.Lookup("127.0.0.1:2"); b.Weight != 7 {
		t.Errorf("weight set here is %d after a registry change, want 7", b.Weight)
	}
	if b := s.Lookup("127.0.0.1:3"); b.State != upstream.StateUp || b.Weight != 100 {
		t.Errorf("new backend is %s with weight %d, want up with 100", b.State, b.Weight)
	}
}

// TestProviderCacheSeedsPool checks that a provider started while every
// registry server is down takes the answer its disk cache kept.
func TestProviderCacheSeedsPool(t *testing.T) {
	node := startRegistry(t)
	reg := node.ID()
	dir := t.TempDir()
	cfg := config.PoolRegistry{Servers: []string{reg}, Namespace: "public", Group: "DEFAULT_GROUP", Service: "web", Allow: []string{"127.0.0.0/8"}, CacheDir: dir}
	first := newPool(t, "first")
	p, err := Start(first, cfg, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	register(t, reg, "web", "127.0.0.1", 1, "a", nil)
	waitFor(t, time.Second, "the backend", func() bool { return len(names(first)) == 1 })
	p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := node.Close(ctx); err != nil {
		t.Fatal(err)
	}

	second := newPool(t, "second")
	p2, err := Start(second, cfg, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Stop()
	select {
	case <-p2.Ready():
	case <-time.After(time.Second):
		t.Fatal("a provider with a cache and no registry is not ready")
	}
	if got := names(second); !slices.Equal(got, []string{"127.0.0.1:1"}) {
		t.Fatalf("pool seeded from the cache has %v, want [127.0.0.1:1]", got)
	}
}

// countingHandler is a slog handler that counts the records with message
// msg, whatever their level, and drops everything.
type countingHandler struct {
	msg string
	n   atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}

func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
