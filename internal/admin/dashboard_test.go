package admin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestDashboardAssets(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		desc   string
		method string
		path   string
		status int
		ctype  string
		body   string // a substring the body must hold
	}{
		{desc: "the page at the root", method: "GET", path: "/", status: 200, ctype: "text/html; charset=utf-8", body: "<title>strata dashboard</title>"},
		{desc: "HEAD of the page", method: "HEAD", path: "/", status: 200, ctype: "text/html; charset=utf-8"},
		{desc: "script", method: "GET", path: "/dashboard/app.js", status: 200, ctype: "text/javascript; charset=utf-8", body: "/api/v1/status"},
		{desc: "style sheet", method: "GET", path: "/dashboard/style.css", status: 200, ctype: "text/css; charset=utf-8", body: ".chain"},
		{desc: "icon", method: "GET", path: "/dashboard/favicon.svg", status: 200, ctype: "image/svg+xml", body: "<svg"},
		{desc: "unknown asset", method: "GET", path: "/dashboard/nope.js", status: 404, ctype: "application/json", body: "no such dashboard file"},
		{desc: "other unknown paths stay JSON 404s", method: "GET", path: "/nope", status: 404, ctype: "application/json", body: "no such endpoint"},
		{desc: "the page is read-only", method: "POST", path: "/", status: 405, ctype: "application/json", body: "not allowed"},
		{desc: "assets are read-only", method: "DELETE", path: "/dashboard/app.js", status: 405, ctype: "application/json", body: "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := do(t, tt.method, f.base+tt.path, "", nil)
			if r.status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.status)
			}
			if got := r.header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", got, tt.ctype)
			}
			if !strings.Contains(string(r.body), tt.body) {
				t.Errorf("body lacks %q:\n%.300s", tt.body, r.body)
			}
			if tt.status == 200 && r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", r.header.Get("X-Content-Type-Options"))
			}
		})
	}
}

// The page must not be frameable (a framed page's clicks would be
// same-origin writes) and must load nothing from elsewhere.
func TestDashboardPageHeaders(t *testing.T) {
	f := newFixture(t, nil)
	r := do(t, "GET", f.base+"/", "", nil)
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if got := r.header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", got)
	}
	// Every reference the page makes is to this listener.
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(string(r.body), -1) {
		if !strings.HasPrefix(m[1], "/") || strings.HasPrefix(m[1], "//") {
			t.Errorf("page refers to %q, which is not a path on this listener", m[1])
		}
		if strings.HasPrefix(m[1], "/dashboard/") {
			if a := do(t, "GET", f.base+m[1], "", nil); a.status != 200 {
				t.Errorf("page refers to %s, which answers %d", m[1], a.status)
			}
		}
	}

	etag := r.header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on the page")
	}
	if r := do(t, "GET", f.base+"/", "", map[string]string{"If-None-Match": etag}); r.status != http.StatusNotModified || len(r.body) != 0 {
		t.Errorf("revalidation = %d with %d bytes, want 304 and no body", r.status, len(r.body))
	}

	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(f.base + "/dashboard/index.html")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/" {
		t.Errorf("/dashboard/index.html = %d to %q, want 301 to /", res.StatusCode, res.Header.Get("Location"))
	}
}

// chainSource is a fakeSource that knows its chain.
type chainSource struct {
	*fakeSource
	hops []Hop
}

func (c chainSource) Chain() []Hop { return c.hops }

func TestChain(t *testing.T) {
	tests := []struct {
		desc string
		hops []Hop // nil: the Source has no Chain method
		want string
	}{
		{desc: "a source without a chain", want: "[]"},
		{desc: "a chain with nil pools", hops: []Hop{{Role: "registry", Name: "registry", Listen: "127.0.0.1:8848"}},
			want: `[{"role":"registry","name":"registry","listen":"127.0.0.1:8848","pools":[]}]`},
		{desc: "the whole chain", hops: []Hop{
			{Role: "dns", Name: "demo.test", Listen: "127.0.0.1:5353", Names: []string{"www"}, Pools: []string{"vip"}},
			{Role: "l4", Name: "edge", Listen: "127.0.0.1:8000", Protocol: "tcp", Pools: []string{"l7nodes"}},
			{Role: "l7", Name: "web", Listen: "127.0.0.1:8080", Names: []string{"/ → app"}, Pools: []string{"web", "api"}},
		}, want: `[{"role":"dns","name":"demo.test","listen":"127.0.0.1:5353","names":["www"],"pools":["vip"]},` +
			`{"role":"l4","name":"edge","listen":"127.0.0.1:8000","protocol":"tcp","pools":["l7nodes"]},` +
			`{"role":"l7","name":"web","listen":"127.0.0.1:8080","names":["/ → app"],"pools":["web","api"]}]`},
		{desc: "l7 nodes elsewhere and a pool that follows the registry", hops: []Hop{
			{Role: "l4", Name: "edge", Listen: "127.0.0.1:8000", Protocol: "tcp", Pools: []string{"l7-nodes"},
				BackendRole: "l7", Admin: map[string]string{"l7-a": "127.0.0.1:9911"}},
			{Role: "app", Name: "app", Pools: []string{"app"}, Registry: map[string]string{"app": "public/DEFAULT_GROUP/web"}},
		}, want: `[{"role":"l4","name":"edge","listen":"127.0.0.1:8000","protocol":"tcp","pools":["l7-nodes"],` +
			`"backend_role":"l7","admin":{"l7-a":"127.0.0.1:9911"}},` +
			`{"role":"app","name":"app","listen":"","pools":["app"],"registry":{"app":"public/DEFAULT_GROUP/web"}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f := newFixture(t, func(o *Options) {
				if tt.hops != nil {
					o.Source = chainSource{fakeSource: o.Source.(*fakeSource), hops: tt.hops}
				}
			})
			r := do(t, "GET", f.base+"/api/v1/chain", "", nil)
			if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("GET /api/v1/chain = %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			var got, want any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("chain = %s\nwant %s", r.body, tt.want)
			}
			if r := do(t, "POST", f.base+"/api/v1/chain", "", nil); r.status != http.StatusMethodNotAllowed {
				t.Errorf("POST /api/v1/chain = %d, want 405", r.status)
			}
		})
	}
}
