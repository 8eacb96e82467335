package l7

import (
	"testing"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// BenchmarkProxyPolicy is BenchmarkProxy through a route that uses the
// traffic policy: a host and regex match among other routes, a 10% split,
// a retry budget and request and response header edits.
func BenchmarkProxyPolicy(b *testing.B) {
	pools := map[string]*upstream.Pool{
		"bench":  newPool(b, "bench", rawBackend(b, benchResponse), rawBackend(b, benchResponse)),
		"canary": newPool(b, "canary", rawBackend(b, benchResponse)),
	}
	s := NewServer(Options{Logger: quietLogger()})
	routes := []config.Route{
		{Host: "other.example", Pool: "bench"},
		{Host: "*.example", PathPrefix: "/api", Pool: "bench"},
		{Host: "bench.example", PathRegex: "^/bench$", Methods: []string{"GET"}, Pool: "bench",
			Split:           []config.RouteSplit{{Pool: "canary", Weight: 10}},
			Retry:           config.RouteRetry{Statuses: []int{503}},
			RequestHeaders:  config.HeaderOps{Set: map[string]string{"X-Route": "bench"}},
			ResponseHeaders: config.HeaderOps{Remove: []string{"Server"}},
		},
	}
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", Routes: routes}}}
	if err := s.Apply(cfg, pools); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { shutdown(b, s) })
	bc := newBenchClient(b, s.Addrs()[0].String())
	for range 100 {
		if err := bc.get(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := bc.get(); err != nil {
			b.Fatal(err)
		}
	}
}
