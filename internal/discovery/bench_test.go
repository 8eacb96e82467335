package discovery

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
	"github.com/strata-lb/strata/pkg/client"
)

// BenchmarkSpecs measures turning a registry answer of 100 instances into
// pool specs, which happens once per change of the service.
func BenchmarkSpecs(b *testing.B) {
	ins := make([]client.Instance, 100)
	for i := range ins {
		ins[i] = client.Instance{IP: "10.0.0.1", Port: 1000 + i, Cluster: fmt.Sprintf("zone-%d", i%3), Weight: 1, Healthy: i%10 != 0, Enabled: true, Metadata: map[string]string{"version": "2"}}
	}
	cfg := &config.PoolRegistry{Clusters: []string{"zone-0", "zone-1"}, Selector: map[string]string{"version": "2"}}
	b.ReportAllocs()
	for b.Loop() {
		Specs(ins, cfg)
	}
}

// BenchmarkAdmit measures the address checks of a registry answer of 100
// instances, with an allow list and the listeners of a process that has
// one on every address (which reads the machine's addresses once per
// answer).
func BenchmarkAdmit(b *testing.B) {
	ins := make([]client.Instance, 100)
	for i := range ins {
		ins[i] = client.Instance{IP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Port: 8080, Healthy: true, Enabled: true}
	}
	p := &Provider{
		log:   quiet,
		allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		self: func() []netip.AddrPort {
			return []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9901"), netip.MustParseAddrPort("0.0.0.0:8080")}
		},
	}
	b.ReportAllocs()
	for b.Loop() {
		p.admit(ins)
	}
}

// BenchmarkRegistryToPool measures how long a registration takes to reach
// a pool through a real registry on loopback: one op is a registration
// and a deregistration, each waited for until the pool shows it, so the
// pool stays at one backend throughout.
func BenchmarkRegistryToPool(b *testing.B) {
	node := startRegistry(b)
	reg := node.ID()
	pool := newPool(b, "bench")
	p, err := Start(pool, config.PoolRegistry{Servers: []string{reg}, Namespace: "public", Group: "DEFAULT_GROUP", Service: "bench", Allow: []string{"127.0.0.0/8"}}, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		port := 1 + i%60000
		register(b, reg, "bench", "127.0.0.1", port, "a", nil)
		name := fmt.Sprintf("127.0.0.1:%d", port)
		waitPool(b, pool, name, true)
		deregister(b, reg, "bench", "127.0.0.1", port, "a")
		waitPool(b, pool, name, false)
	}
}

// waitPool spins until the pool has (or lacks) the backend name.
func waitPool(b *testing.B, pool *upstream.Pool, name string, present bool) {
	deadline := time.Now().Add(5 * time.Second)
	for (pool.Snapshot().Lookup(name) != nil) != present {
		if time.Now().After(deadline) {
			b.Fatalf("pool never showed %s present=%v", name, present)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func deregister(b *testing.B, reg, service, ip string, port int, cluster string) {
	q := url.Values{"service": {service}, "ip": {ip}, "port": {strconv.Itoa(port)}, "cluster": {cluster}}
	req, _ := http.NewRequest(http.MethodDelete, "http://"+reg+"/v1/registry/instances?"+q.Encode(), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("deregister: %s", res.Status)
	}
}
