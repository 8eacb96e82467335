package admin

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-lb/strata/internal/upstream"
)

// A write that a proxy forwarded is refused, with or without the token:
// through strata's own l7 it may come from any client of the data plane.
func TestForwardedWriteRefused(t *testing.T) {
	const token = "forwarded-test-token"
	for _, withToken := range []bool{false, true} {
		f := newFixture(t, func(o *Options) {
			if withToken {
				o.Token = token
			}
		})
		auth := map[string]string{}
		if withToken {
			auth["Authorization"] = "Bearer " + token
		}
		for _, h := range []struct{ name, value string }{
			{"X-Forwarded-For", "203.0.113.7"},
			{"X-Forwarded-Host", "127.0.0.1"},
			{"X-Forwarded-Proto", "http"},
			{"Forwarded", "for=203.0.113.7"},
			{"Via", "1.1 proxy"},
			{"X-Real-IP", "203.0.113.7"},
		} {
			hdr := map[string]string{h.name: h.value, "Host": "127.0.0.1"}
			for k, v := range auth {
				hdr[k] = v
			}
			before := f.web.Snapshot().Version
			r := do(t, http.MethodPost, f.base+"/api/v1/pools/web/backends/a/drain", "", hdr)
			if r.status != http.StatusForbidden || !strings.Contains(r.errMsg(t), "through a proxy") {
				t.Errorf("token %v, %s: drain = %d %s, want 403 naming the proxy", withToken, h.name, r.status, r.body)
			}
			if f.web.Snapshot().Version != before {
				t.Errorf("token %v, %s: the pool changed", withToken, h.name)
			}
		}
		// The normal path: the same write sent directly is obeyed.
		r := do(t, http.MethodPost, f.base+"/api/v1/pools/web/backends/a/drain", "", auth)
		if r.status != http.StatusOK || f.web.Snapshot().Lookup("a").State != upstream.StateDraining {
			t.Errorf("token %v: direct drain = %d %s, want 200 and a draining", withToken, r.status, r.body)
		}
	}
}

// On a loopback listener every read but /healthz needs a loopback Host,
// so that a page that rebinds its name to 127.0.0.1 cannot read the API
// through the operator's browser.
func TestReadsCheckHost(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Pprof = true })
	port := f.base[strings.LastIndex(f.base, ":"):]
	for _, path := range []string{"/api/v1/status", "/api/v1/pools/web", "/api/v1/pools/web/backends/a", "/api/v1/chain", "/metrics", "/", "/dashboard/app.js", "/debug/pprof/cmdline"} {
		for _, tc := range []struct {
			host   string
			status int
		}{
			{"127.0.0.1" + port, 200},
			{"localhost" + port, 200},
			{"[::1]" + port, 200},
			{"evil.example" + port, 403},
			{"127.0.0.1.evil.example" + port, 403},
		} {
			r := do(t, http.MethodGet, f.base+path, "", map[string]string{"Host": tc.host})
			if r.status == http.StatusNotFound && tc.status == 200 && path == "/dashboard/app.js" {
				continue // the asset's name is the dashboard's business
			}
			if r.status != tc.status {
				t.Errorf("GET %s with Host %s = %d %.100s, want %d", path, tc.host, r.status, r.body, tc.status)
			}
		}
	}
	if r := do(t, http.MethodGet, f.base+"/healthz", "", map[string]string{"Host": "evil.example" + port}); r.status != 200 {
		t.Errorf("GET /healthz with a foreign Host = %d, want 200", r.status)
	}

	// A listener on a network address is reached by name; reads there
	// take any Host. The handler is driven directly: tests listen only on
	// loopback.
	s, err := New(Options{Listen: "192.0.2.10:9901", Token: "t", Source: f.src, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://lb1.example:9901/api/v1/status", nil)
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("status on a network listener by name = %d, want 200", rec.Code)
	}
}

// pprof: behind the token when there is one, refused on a network
// listener without one, and its CPU-costing requests bounded.
func TestPprofGuard(t *testing.T) {
	const token = "pprof-test-token"
	f := newFixture(t, func(o *Options) { o.Pprof = true; o.Token = token })
	bearer := map[string]string{"Authorization": "Bearer " + token}
	for _, tc := range []struct {
		desc   string
		path   string
		hdr    map[string]string
		status int
	}{
		{"index without token", "/debug/pprof/", nil, 401},
		{"cmdline without token", "/debug/pprof/cmdline", nil, 401},
		{"profile without token", "/debug/pprof/profile?seconds=1", nil, 401},
		{"wrong token", "/debug/pprof/", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"index with token", "/debug/pprof/", bearer, 200},
		{"an hour of CPU profile", "/debug/pprof/profile?seconds=3600", bearer, 400},
		{"an hour of trace", "/debug/pprof/trace?seconds=3600", bearer, 400},
		{"not a number", "/debug/pprof/profile?seconds=x", bearer, 400},
	} {
		r := do(t, http.MethodGet, f.base+tc.path, "", tc.hdr)
		if r.status != tc.status {
			t.Errorf("%s: GET %s = %d %.100s, want %d", tc.desc, tc.path, r.status, r.body, tc.status)
		}
	}

	s, err := New(Options{Listen: "192.0.2.10:9901", Pprof: true, Source: f.src, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://192.0.2.10:9901/debug/pprof/cmdline", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("pprof on a network listener without a token = %d, want 403", rec.Code)
	}
}

func TestRedactArgs(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"strata", "registry", "--token", "s3cret", "--listen", ":8848"}, []string{"strata", "registry", "--token", "REDACTED", "--listen", ":8848"}},
		{[]string{"strata", "-token=s3cret", "-admin-token", "x"}, []string{"strata", "-token=REDACTED", "-admin-token", "REDACTED"}},
		{[]string{"strata", "--token-file", "/run/secrets/t", "--secret=abc"}, []string{"strata", "--token-file", "/run/secrets/t", "--secret=REDACTED"}},
		{[]string{"strata", "token", "run"}, []string{"strata", "token", "run"}},
	} {
		got := strings.Split(string(redactArgs(tc.in)), "\x00")
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("redactArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Options.Relayed names peers that are this process's own connections to
// a backend; their writes are refused, with or without a token.
func TestRelayedWriteRefused(t *testing.T) {
	var relayed atomic.Bool
	f := newFixture(t, func(o *Options) {
		o.Relayed = func(netip.AddrPort) bool { return relayed.Load() }
	})
	relayed.Store(true)
	r := do(t, http.MethodPost, f.base+"/api/v1/pools/web/backends/a/drain", "", nil)
	if r.status != http.StatusForbidden || f.web.Snapshot().Lookup("a").State != upstream.StateUp {
		t.Errorf("relayed drain = %d %s, want 403 and a still up", r.status, r.body)
	}
	relayed.Store(false)
	if r := do(t, http.MethodPost, f.base+"/api/v1/pools/web/backends/a/drain", "", nil); r.status != http.StatusOK {
		t.Errorf("direct drain = %d %s, want 200", r.status, r.body)
	}
}
