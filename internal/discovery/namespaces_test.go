package discovery

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/pkg/client"
)

// TestNamespacesOneWatch follows a namespace of five services of a real
// registry through a proxy that counts requests: every service, a change
// and a deletion arrive, all through one watch request for the namespace
// and no request per service.
func TestNamespacesOneWatch(t *testing.T) {
	n := startRegistry(t)
	reg := n.ID() // the node's ID is its HTTP address
	// Instances that keep beating, so they stay healthy however long the
	// test takes.
	app, err := client.New(client.Config{Servers: []string{reg}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(context.Background())
	ctx := context.Background()
	for i := range 5 {
		if err := app.Register(ctx, fmt.Sprintf("svc-%d", i), client.Instance{IP: "127.0.0.1", Port: 9000 + i, Cluster: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	target, _ := url.Parse("http://" + reg)
	var mu sync.Mutex
	paths := map[string]int{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // a watch streams
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths[r.URL.Path]++
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	src, err := NewNamespaces([]string{strings.TrimPrefix(srv.URL, "http://")}, "", []string{"public"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	src.Start()
	t.Cleanup(src.Close)
	waitFor(t, 5*time.Second, "five services", func() bool { return len(src.Services("public")) == 5 })
	res, ok := src.Resolve("public", "DEFAULT_GROUP", "svc-3")
	if !ok || len(res.Instances) != 1 || res.Instances[0].Port != 9003 || !res.Found {
		t.Fatalf("svc-3 = %+v, %v", res, ok)
	}

	changed := src.Changed()
	if err := app.Register(ctx, "svc-3", client.Instance{IP: "127.0.0.1", Port: 9103, Cluster: "a"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed after a registration")
	}
	waitFor(t, 5*time.Second, "svc-3's second instance", func() bool {
		res, _ := src.Resolve("public", "DEFAULT_GROUP", "svc-3")
		return len(res.Instances) == 2
	})
	if err := app.Deregister(ctx, "svc-4", client.Instance{IP: "127.0.0.1", Port: 9004, Cluster: "a"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "svc-4 without instances", func() bool {
		res, _ := src.Resolve("public", "DEFAULT_GROUP", "svc-4")
		return len(res.Instances) == 0
	})

	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths["/v1/registry/watch/public"] != 1 {
		t.Errorf("requests by path: %v, want one watch of the namespace and nothing else", paths)
	}
}
