package l7

import (
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// echoHeaders answers with its name and echoes chosen request headers
// back as X-Got-<name>, so tests can see what the backend received.
func echoHeaders(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		w.Header().Set("Server", "backend")
		for _, h := range []string{"X-Route", "Via", "X-Debug"} {
			if v := r.Header.Values(h); len(v) > 0 {
				w.Header().Set("X-Got-"+h, strings.Join(v, ","))
			}
		}
		io.WriteString(w, name)
	})
}

func TestRoutingPriority(t *testing.T) {
	pools := map[string]*upstream.Pool{}
	for _, n := range []string{"exact", "deep", "wild", "any", "regex", "post", "hdr", "query", "exactpath"} {
		pools[n] = newPool(t, n, startBackend(t, named(n)).addr)
	}
	routes := []config.Route{
		// Listed least specific first: the host, not the order, decides.
		{Pool: "any"},
		{Host: "*.example.com", Pool: "wild"},
		{Host: "*.a.example.com", Pool: "deep"},
		{Host: "www.example.com", Path: "/exact", Pool: "exactpath"},
		{Host: "www.example.com", PathRegex: `^/u/[0-9]+$`, Pool: "regex"},
		{Host: "www.example.com", Methods: []string{"POST"}, Pool: "post"},
		{Host: "www.example.com", Headers: map[string]string{"x-env": "~^stag"}, Pool: "hdr"},
		{Host: "www.example.com", Query: map[string]string{"debug": "1", "x y": "*"}, Pool: "query"},
		{Host: "www.example.com", PathPrefix: "/site", Pool: "exact"},
	}
	_, base := startProxy(t, Options{}, routes, pools)
	c := &http.Client{Timeout: 5 * time.Second}
	tests := []struct {
		desc, method, host, path string
		header                   http.Header
		status                   int
		want                     string
	}{
		{desc: "exact host before wildcard", host: "www.example.com", path: "/site/a", status: 200, want: "exact"},
		{desc: "exact host is a group: no fall-through to the wildcard", host: "www.example.com", path: "/other", status: 404},
		{desc: "longest wildcard wins", host: "x.a.example.com", path: "/", status: 200, want: "deep"},
		{desc: "shorter wildcard", host: "x.b.example.com", path: "/", status: 200, want: "wild"},
		{desc: "no host route", host: "elsewhere.test", path: "/", status: 200, want: "any"},
		{desc: "exact path", host: "www.example.com", path: "/exact", status: 200, want: "exactpath"},
		{desc: "exact path is not a prefix", host: "www.example.com", path: "/exact/more", status: 404},
		{desc: "regex path", host: "www.example.com", path: "/u/42", status: 200, want: "regex"},
		{desc: "regex anchored", host: "www.example.com", path: "/u/42x", status: 404},
		{desc: "method", method: "POST", host: "www.example.com", path: "/anything", status: 200, want: "post"},
		{desc: "header regex", host: "www.example.com", path: "/h", header: http.Header{"X-Env": {"staging"}}, status: 200, want: "hdr"},
		{desc: "header regex does not match", host: "www.example.com", path: "/h", header: http.Header{"X-Env": {"prod"}}, status: 404},
		{desc: "query match with encoded name", host: "www.example.com", path: "/q?a=b&debug=1&x+y=", status: 200, want: "query"},
		{desc: "query missing parameter", host: "www.example.com", path: "/q?debug=1", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			m := tc.method
			if m == "" {
				m = http.MethodGet
			}
			req, _ := http.NewRequest(m, base+tc.path, nil)
			req.Host = tc.host
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || (tc.want != "" && string(body) != tc.want) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
}

func TestRedirectRespondAndHeaderEdits(t *testing.T) {
	be := startBackend(t, echoHeaders("be"))
	pools := map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}
	routes := []config.Route{
		{PathPrefix: "/old/", Redirect: &config.RouteRedirect{Status: 301, Scheme: "https", Host: "new.test:8443", PrefixRewrite: "/new/"}},
		{PathPrefix: "/gone", Redirect: &config.RouteRedirect{Path: "/", DropQuery: true}},
		{Path: "/healthz", Respond: &config.RouteRespond{Status: 200, Body: "ok\n"}},
		{Path: "/teapot", Respond: &config.RouteRespond{Status: 418, Body: `{"t":1}`, ContentType: "application/json"}},
		{Pool: "p",
			RequestHeaders:  config.HeaderOps{Set: map[string]string{"x-route": "r1"}, Add: map[string]string{"Via": "strata"}, Remove: []string{"X-Debug"}},
			ResponseHeaders: config.HeaderOps{Set: map[string]string{"Cache-Control": "no-store"}, Add: map[string]string{"X-Backend": "proxy"}, Remove: []string{"Server"}}},
	}
	_, base := startProxy(t, Options{}, routes, pools)
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		desc, path string
		status     int
		location   string
		body, ct   string
	}{
		{desc: "prefix rewrite keeps the query", path: "/old/a/b?x=1", status: 301, location: "https://new.test:8443/new/a/b?x=1"},
		{desc: "path replaced, query dropped", path: "/gone/x?y=2", status: 302, location: "http://" + strings.TrimPrefix(base, "http://") + "/"},
		{desc: "fixed response", path: "/healthz", status: 200, body: "ok\n", ct: "text/plain; charset=utf-8"},
		{desc: "fixed response with type", path: "/teapot", status: 418, body: `{"t":1}`, ct: "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			resp, err := noFollow.Get(base + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
				t.Fatalf("got %d Location %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
			}
			if tc.body != "" && (string(body) != tc.body || resp.Header.Get("Content-Type") != tc.ct) {
				t.Fatalf("got body %q type %q, want %q %q", body, resp.Header.Get("Content-Type"), tc.body, tc.ct)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/x", nil)
	req.Header.Set("X-Route", "client")
	req.Header.Set("Via", "1.1 front")
	req.Header.Set("X-Debug", "1")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	checks := map[string]string{
		"X-Got-X-Route": "r1", "X-Got-Via": "1.1 front,strata", "X-Got-X-Debug": "",
		"Cache-Control": "no-store", "Server": "",
	}
	for k, want := range checks {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := h.Values("X-Backend"); len(got) != 2 || got[0] != "be" || got[1] != "proxy" {
		t.Errorf("X-Backend = %q, want [be proxy]", got)
	}
}

// TestCurlRedirect checks a redirect and a fixed response with curl.
func TestCurlRedirect(t *testing.T) {
	testnet.NeedTool(t, "curl", "curl")
	routes := []config.Route{
		{PathPrefix: "/old/", Redirect: &config.RouteRedirect{Status: 308, PrefixRewrite: "/new/"}},
		{PathPrefix: "/new/", Respond: &config.RouteRespond{Body: "new place"}},
	}
	_, base := startProxy(t, Options{}, routes, nil)
	out, err := exec.Command("curl", "-sS", "-L", "-X", "POST", "-d", "x", "-w", " %{http_code} %{num_redirects}", base+"/old/page").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	if string(out) != "new place 200 1" {
		t.Fatalf("curl printed %q, want %q", out, "new place 200 1")
	}
}

func TestQueryValue(t *testing.T) {
	tests := []struct {
		desc, raw, name, want string
		ok                    bool
	}{
		{desc: "plain", raw: "a=1&b=2", name: "b", want: "2", ok: true},
		{desc: "first wins", raw: "a=1&a=2", name: "a", want: "1", ok: true},
		{desc: "no value", raw: "flag", name: "flag", want: "", ok: true},
		{desc: "encoded", raw: "q=a%20b+c", name: "q", want: "a b c", ok: true},
		{desc: "absent", raw: "a=1", name: "b"},
		{desc: "bad escape in value", raw: "q=%zz", name: "q"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, ok := queryValue(tc.raw, tc.name)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("queryValue(%q, %q) = %q, %v; want %q, %v", tc.raw, tc.name, got, ok, tc.want, tc.ok)
			}
			if vs, err := url.ParseQuery(tc.raw); err == nil && tc.ok && vs.Get(tc.name) != got {
				t.Fatalf("differs from url.ParseQuery: %q", vs.Get(tc.name))
			}
		})
	}
}
