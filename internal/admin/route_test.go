package admin

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// routeSource is a fakeSource whose role adds a read, a write and a BGP
// status, as the supervisor's l4 role does.
type routeSource struct {
	*fakeSource
	writes atomic.Int32
}

func (r *routeSource) AdminRoutes() []Route {
	return []Route{
		{Path: "/api/v1/role/read", Handler: func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("{}\n")) }},
		{Path: "/api/v1/role/write", Method: http.MethodPost, Handler: func(w http.ResponseWriter, _ *http.Request) {
			r.writes.Add(1)
			w.Write([]byte("{}\n"))
		}},
	}
}

func (r *routeSource) BGPStatus() any { return map[string]bool{"drained": true} }

// TestRoleWriteRoute: a role's POST route is guarded as the listener's
// own writes — the token, no forwarded requests — and answers 405 to GET;
// a StatusSource's state is the "bgp" section of /api/v1/status.
func TestRoleWriteRoute(t *testing.T) {
	var src *routeSource
	f := newFixture(t, func(o *Options) {
		src = &routeSource{fakeSource: o.Source.(*fakeSource)}
		o.Source = src
		o.Token = "tok-123"
	})
	url := f.base + "/api/v1/role/write"
	for _, tc := range []struct {
		desc   string
		method string
		hdr    map[string]string
		status int
	}{
		{"no token", http.MethodPost, nil, http.StatusUnauthorized},
		{"wrong token", http.MethodPost, map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"forwarded", http.MethodPost, map[string]string{"Authorization": "Bearer tok-123", "X-Forwarded-For": "192.0.2.1"}, http.StatusForbidden},
		{"GET on a write", http.MethodGet, map[string]string{"Authorization": "Bearer tok-123"}, http.StatusMethodNotAllowed},
		{"token", http.MethodPost, map[string]string{"Authorization": "Bearer tok-123"}, http.StatusOK},
	} {
		if r := do(t, tc.method, url, "", tc.hdr); r.status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.desc, r.status, tc.status, r.body)
		}
	}
	if n := src.writes.Load(); n != 1 {
		t.Errorf("the write handler ran %d times, want once", n)
	}
	if r := do(t, http.MethodGet, f.base+"/api/v1/role/read", "", map[string]string{"Authorization": "Bearer tok-123"}); r.status != http.StatusOK {
		t.Errorf("GET of the role's read: %d", r.status)
	}
	r := do(t, http.MethodGet, f.base+"/api/v1/status", "", map[string]string{"Authorization": "Bearer tok-123"})
	if !strings.Contains(string(r.body), `"bgp": {`) || !strings.Contains(string(r.body), `"drained": true`) {
		t.Errorf("/api/v1/status lacks the bgp section: %s", r.body)
	}
}
