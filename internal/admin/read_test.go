package admin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/upstream"
)

func TestHealthz(t *testing.T) {
	f := newFixture(t, nil)
	r := do(t, http.MethodGet, f.base+"/healthz", "", nil)
	if r.status != http.StatusOK || string(r.body) != "ok\n" {
		t.Fatalf("GET /healthz = %d %q, want 200 \"ok\\n\"", r.status, r.body)
	}
}

func TestStatus(t *testing.T) {
	f := newFixture(t, nil)
	a := f.web.Snapshot().Lookup("a")
	a.Active.Store(3)
	a.Requests.Store(7)
	a.Failures.Store(1)
	a.Ejections.Store(2)
	if err := f.web.SetHealthy("b", false); err != nil {
		t.Fatal(err)
	}

	r := do(t, http.MethodGet, f.base+"/api/v1/status", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/status = %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var st Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("decoding status: %v\n%s", err, r.body)
	}
	if st.Version != "v1.2.3-test" {
		t.Errorf("version = %q", st.Version)
	}
	if st.StartTime.IsZero() || st.StartTime.After(time.Now()) || st.UptimeSeconds < 0 {
		t.Errorf("start_time = %v, uptime_seconds = %v", st.StartTime, st.UptimeSeconds)
	}
	if len(st.Pools) != 2 || st.Pools[0].Name != "web" || st.Pools[1].Name != "api" {
		t.Fatalf("pools = %+v, want web then api (the source's order)", st.Pools)
	}
	web := st.Pools[0]
	if web.Version != f.web.Snapshot().Version || web.Ready != 1 || web.Total != 3 {
		t.Errorf("web: version %d ready %d total %d, want version %d ready 1 total 3",
			web.Version, web.Ready, web.Total, f.web.Snapshot().Version)
	}
	want := []BackendStatus{
		{Name: "a", Address: "10.0.0.1:80", Zone: "z1", Tags: map[string]string{"canary": "true"},
			State: "up", Healthy: true, Available: true, Weight: 2, EffectiveWeight: 2, Status: "up",
			Active: 3, Requests: 7, Failures: 1, Ejections: 2, Health: json.RawMessage(`{"last":"ok","successes":3}`)},
		{Name: "b", Address: "10.0.0.2:80", State: "up", Weight: 1, Status: "unhealthy"},
		{Name: "c", Address: "10.0.0.3:80", State: "draining", Healthy: true, Weight: 1, Status: "draining"},
	}
	// Health holds the indented bytes of the response; compact them.
	for i := range web.Backends {
		if h := web.Backends[i].Health; h != nil {
			var v any
			if err := json.Unmarshal(h, &v); err != nil {
				t.Fatal(err)
			}
			web.Backends[i].Health, _ = json.Marshal(v)
		}
	}
	if !reflect.DeepEqual(web.Backends, want) {
		t.Errorf("web backends:\n got %+v\nwant %+v", web.Backends, want)
	}

	// The wire names are the contract with curl users and dashboards;
	// decoding into the same struct would not notice a renamed tag.
	var raw struct {
		Pools []struct {
			Backends []map[string]json.RawMessage `json:"backends"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw.Pools[0].Backends[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"active", "address", "available", "effective_weight", "ejected", "ejections", "failures",
		"health", "healthy", "name", "requests", "state", "status", "tags", "weight", "zone"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("backend JSON keys = %v, want %v", keys, wantKeys)
	}
	if got := string(raw.Pools[0].Backends[0]["state"]); got != `"up"` {
		t.Errorf("state on the wire = %s, want \"up\"", got)
	}
}

func TestPoolAndBackendReads(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		desc   string
		path   string
		status int
		want   string // a substring of the body
	}{
		{desc: "known pool", path: "/api/v1/pools/api", status: 200, want: `"name": "x"`},
		{desc: "unknown pool", path: "/api/v1/pools/nope", status: 404, want: `no pool \"nope\"`},
		{desc: "known backend", path: "/api/v1/pools/web/backends/c", status: 200, want: `"status": "draining"`},
		{desc: "unknown backend", path: "/api/v1/pools/web/backends/zz", status: 404, want: `pool web: no backend \"zz\"`},
		{desc: "backend of unknown pool", path: "/api/v1/pools/nope/backends/a", status: 404, want: `no pool \"nope\"`},
		{desc: "unknown endpoint", path: "/api/v2/status", status: 404, want: `"error": "no such endpoint: /api/v2/status"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := do(t, http.MethodGet, f.base+tt.path, "", nil)
			if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("GET %s = %d %s, want %d containing %s", tt.path, r.status, r.body, tt.status, tt.want)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
		})
	}

	r := do(t, http.MethodGet, f.base+"/api/v1/pools/web", "", nil)
	var ps PoolStatus
	if err := json.Unmarshal(r.body, &ps); err != nil {
		t.Fatal(err)
	}
	if ps.Name != "web" || ps.Ready != 2 || ps.Total != 3 || len(ps.Backends) != 3 {
		t.Errorf("pool web = %+v, want 2 of 3 ready", ps)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		desc   string
		method string
		path   string
		allow  string
	}{
		{desc: "delete status", method: http.MethodDelete, path: "/api/v1/status", allow: "GET, HEAD"},
		{desc: "post healthz", method: http.MethodPost, path: "/healthz", allow: "GET, HEAD"},
		{desc: "get drain", method: http.MethodGet, path: "/api/v1/pools/web/backends/a/drain", allow: "POST"},
		{desc: "patch backend", method: http.MethodPatch, path: "/api/v1/pools/web/backends/a", allow: "GET, HEAD, PUT"},
		{desc: "post metrics", method: http.MethodPost, path: "/metrics", allow: "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := do(t, tt.method, f.base+tt.path, "", nil)
			if r.status != http.StatusMethodNotAllowed {
				t.Fatalf("%s %s = %d %s, want 405", tt.method, tt.path, r.status, r.body)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if msg := r.errMsg(t); !strings.Contains(msg, "not allowed") {
				t.Errorf("error = %q", msg)
			}
		})
	}
}

// metricLines returns the sample lines of a text exposition as a set.
func metricLines(body []byte) map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		m[l] = true
	}
	return m
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	a := f.web.Snapshot().Lookup("a")
	a.Active.Store(3)
	a.Requests.Store(7)
	a.Failures.Store(1)
	a.Ejections.Store(2)
	if err := f.web.SetHealthy("b", false); err != nil {
		t.Fatal(err)
	}

	r := do(t, http.MethodGet, f.base+"/metrics", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", r.status, r.body)
	}
	got := metricLines(r.body)
	for _, want := range []string{
		`# TYPE strata_backend_requests_total counter`,
		`# TYPE strata_backend_up gauge`,
		`strata_backend_up{backend="a",pool="web"} 1`,
		`strata_backend_up{backend="b",pool="web"} 0`,
		`strata_backend_up{backend="c",pool="web"} 0`,
		`strata_backend_healthy{backend="a",pool="web"} 1`,
		`strata_backend_healthy{backend="b",pool="web"} 0`,
		`strata_backend_weight{backend="a",pool="web"} 2`,
		`strata_backend_effective_weight{backend="c",pool="web"} 0`,
		`strata_backend_active{backend="a",pool="web"} 3`,
		`strata_backend_requests_total{backend="a",pool="web"} 7`,
		`strata_backend_failures_total{backend="a",pool="web"} 1`,
		`strata_backend_ejections_total{backend="a",pool="web"} 2`,
		`strata_backend_requests_total{backend="x",pool="api"} 0`,
		`strata_pool_ready_backends{pool="web"} 1`,
		`strata_pool_ready_backends{pool="api"} 1`,
		`strata_pool_backends{pool="web"} 3`,
	} {
		if !got[want] {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, prefix := range []string{"go_goroutines ", "process_cpu_seconds_total "} {
		if !strings.Contains(string(r.body), "\n"+prefix) {
			t.Errorf("metrics lack the runtime series %q", prefix)
		}
	}

	// Counters are read at scrape time, not copied at registration.
	a.Requests.Add(5)
	if err := f.web.SetState("a", upstream.StateDraining); err != nil {
		t.Fatal(err)
	}
	got = metricLines(do(t, http.MethodGet, f.base+"/metrics", "", nil).body)
	for _, want := range []string{
		`strata_backend_requests_total{backend="a",pool="web"} 12`,
		`strata_backend_up{backend="a",pool="web"} 0`,
		`strata_pool_ready_backends{pool="web"} 0`,
	} {
		if !got[want] {
			t.Errorf("second scrape lacks %q", want)
		}
	}
}

// A reload that moves the listener starts the new server before it stops
// the old one, on the same registry.
func TestRegistrySharedAcrossServers(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := newFixture(t, func(o *Options) { o.Registry = reg })

	other := upstream.NewPool("other", upstream.Options{})
	t.Cleanup(other.Close)
	if err := other.Update([]upstream.Spec{{Name: "o1", Addr: "10.9.9.9:1", Weight: 4}}); err != nil {
		t.Fatal(err)
	}
	second, err := New(Options{Listen: "127.0.0.1:0", Source: &fakeSource{pools: []*upstream.Pool{other}}, Registry: reg, Logger: first.srv.log})
	if err != nil {
		t.Fatalf("second New on a shared registry: %v", err)
	}
	f2 := &fixture{srv: second}
	f2.start(t)

	want := `strata_backend_weight{backend="o1",pool="other"} 4`
	if got := metricLines(do(t, http.MethodGet, f2.base+"/metrics", "", nil).body); !got[want] {
		t.Errorf("second server's metrics lack %q", want)
	}
	if err := first.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := metricLines(do(t, http.MethodGet, f2.base+"/metrics", "", nil).body)
	if !got[want] {
		t.Errorf("after the first server shut down, metrics lack %q", want)
	}
	if got[`strata_backend_weight{backend="a",pool="web"} 2`] {
		t.Error("metrics still read the first server's source")
	}
}

func TestPprof(t *testing.T) {
	tests := []struct {
		desc   string
		pprof  bool
		path   string
		status int
		want   string
	}{
		{desc: "index on", pprof: true, path: "/debug/pprof/", status: 200, want: "goroutine"},
		{desc: "named profile on", pprof: true, path: "/debug/pprof/goroutine?debug=1", status: 200, want: "goroutine profile:"},
		{desc: "cmdline on", pprof: true, path: "/debug/pprof/cmdline", status: 200, want: "admin.test"},
		{desc: "symbol lookup on", pprof: true, path: "/debug/pprof/symbol", status: 200, want: "num_symbols"},
		{desc: "index off", pprof: false, path: "/debug/pprof/", status: 404, want: `"error"`},
		{desc: "cmdline off", pprof: false, path: "/debug/pprof/cmdline", status: 404, want: `"error"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Pprof = tt.pprof })
			r := do(t, http.MethodGet, f.base+tt.path, "", nil)
			if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("GET %s = %d %.200q, want %d containing %q", tt.path, r.status, r.body, tt.status, tt.want)
			}
		})
	}

	f := newFixture(t, func(o *Options) { o.Pprof = true })
	r := do(t, http.MethodDelete, f.base+"/debug/pprof/heap", "", nil)
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE /debug/pprof/heap = %d Allow %q, want 405 GET, HEAD", r.status, r.header.Get("Allow"))
	}
}

// A CPU profile takes longer than the server's write timeout; net/http/pprof
// extends the deadline itself as long as the server has one. The profile
// is written only after its 2s, so without the extension the 1.9s write
// deadline has always passed; with it the writer has 1.9s of slack, which
// a loaded machine running the race detector needs.
func TestPprofProfileOutlivesWriteTimeout(t *testing.T) {
	t.Parallel()
	web, _ := newPools(t)
	s, err := New(Options{Listen: "127.0.0.1:0", Pprof: true, Source: &fakeSource{pools: []*upstream.Pool{web}}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s.srv.WriteTimeout = 1900 * time.Millisecond
	f := &fixture{srv: s}
	f.start(t)

	r := do(t, http.MethodGet, f.base+"/debug/pprof/profile?seconds=2", "", nil)
	if r.status != http.StatusOK || len(r.body) < 2 || r.body[0] != 0x1f || r.body[1] != 0x8b {
		t.Fatalf("GET profile = %d, %d bytes %.40q, want 200 and a gzipped profile", r.status, len(r.body), r.body)
	}
}
