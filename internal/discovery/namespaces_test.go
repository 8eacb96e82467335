package discovery

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNamespacesOneWatch follows a namespace of five services of a real
// registry through a proxy that counts requests: every service, a change
// and a deletion arrive, all through one watch request for the namespace
// and no request per service.
func TestNamespacesOneWatch(t *testing.T) {
	n := startRegistry(t)
	reg := n.ID() // the node's ID is its HTTP address
	for i := range 5 {
		register(t, reg, fmt.Sprintf("svc-%d", i), "127.0.0.1", 9000+i, "a", nil)
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
	register(t, reg, "svc-3", "127.0.0.1", 9103, "a", nil)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed after a registration")
	}
	waitFor(t, 5*time.Second, "svc-3's second instance", func() bool {
		res, _ := src.Resolve("public", "DEFAULT_GROUP", "svc-3")
		return len(res.Instances) == 2
	})
	req, _ := http.NewRequest(http.MethodDelete, "http://"+reg+"/v1/registry/instances?service=svc-4&ip=127.0.0.1&port=9004&cluster=a", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
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
