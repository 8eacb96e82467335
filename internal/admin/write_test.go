package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/upstream"
)

func TestDrainUndrain(t *testing.T) {
	f := newFixture(t, nil)
	if got := readyNames(f.web); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("ready before = %v", got)
	}

	r := do(t, http.MethodPost, f.base+"/api/v1/pools/web/backends/a/drain", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("drain = %d %s", r.status, r.body)
	}
	var bs BackendStatus
	if err := json.Unmarshal(r.body, &bs); err != nil {
		t.Fatal(err)
	}
	if bs.Name != "a" || bs.State != "draining" || bs.Status != "draining" || bs.Available {
		t.Errorf("drain answered %+v, want a draining and unavailable", bs)
	}
	if got := readyNames(f.web); !slices.Equal(got, []string{"b"}) {
		t.Errorf("ready after drain = %v, want [b]", got)
	}
	if st := f.web.Snapshot().Lookup("a").State; st != upstream.StateDraining {
		t.Errorf("snapshot state of a = %v, want draining", st)
	}
	logs := f.logs.String()
	for _, want := range []string{"msg=\"admin write\"", "remote=127.0.0.1:", "action=drain", "pool=web", "backend=a", "state_from=up", "state_to=draining"} {
		if !strings.Contains(logs, want) {
			t.Errorf("write log lacks %q:\n%s", want, logs)
		}
	}

	r = do(t, http.MethodPost, f.base+"/api/v1/pools/web/backends/a/undrain", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("undrain = %d %s", r.status, r.body)
	}
	if got := readyNames(f.web); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("ready after undrain = %v, want [a b]", got)
	}
}

func TestWriteNeedsToken(t *testing.T) {
	const token = "s3cret-token"
	f := newFixture(t, func(o *Options) { o.Token = token })
	tests := []struct {
		desc      string
		auth      string
		status    int
		challenge string // WWW-Authenticate on 401
	}{
		{desc: "no header", auth: "", status: 401, challenge: `Bearer realm="strata-admin"`},
		{desc: "wrong token", auth: "Bearer nope", status: 401, challenge: `Bearer realm="strata-admin", error="invalid_token"`},
		{desc: "prefix of the token", auth: "Bearer s3cret", status: 401, challenge: `Bearer realm="strata-admin", error="invalid_token"`},
		{desc: "token with a suffix", auth: "Bearer " + token + "x", status: 401, challenge: `Bearer realm="strata-admin", error="invalid_token"`},
		{desc: "basic scheme", auth: "Basic " + token, status: 401, challenge: `Bearer realm="strata-admin"`},
		{desc: "scheme only", auth: "Bearer", status: 401, challenge: `Bearer realm="strata-admin"`},
		{desc: "right token", auth: "Bearer " + token, status: 200},
		{desc: "scheme is case-insensitive", auth: "bearer " + token, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			// Undo the previous case's drain so every case starts from up.
			if err := f.web.SetState("a", upstream.StateUp); err != nil {
				t.Fatal(err)
			}
			before := f.web.Snapshot().Version
			hdr := map[string]string{}
			if tt.auth != "" {
				hdr["Authorization"] = tt.auth
			}
			r := do(t, http.MethodPost, f.base+"/api/v1/pools/web/backends/a/drain", "", hdr)
			if r.status != tt.status {
				t.Fatalf("drain with %q = %d %s, want %d", tt.auth, r.status, r.body, tt.status)
			}
			changed := f.web.Snapshot().Version != before
			if changed != (tt.status == 200) {
				t.Errorf("pool changed = %v after %d", changed, r.status)
			}
			if tt.status == 401 {
				if got := r.header.Get("WWW-Authenticate"); got != tt.challenge {
					t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
				}
				r.errMsg(t)
			}
		})
	}

	// Reads stay open when a token is set.
	if r := do(t, http.MethodGet, f.base+"/api/v1/status", "", nil); r.status != http.StatusOK {
		t.Errorf("GET status without token = %d, want 200", r.status)
	}
}

// Without a token, the listener being on loopback is the guard.
func TestWriteWithoutToken(t *testing.T) {
	f := newFixture(t, nil)
	addr := f.srv.Addr().String()
	port := addr[strings.LastIndex(addr, ":"):]
	tests := []struct {
		desc   string
		hdr    map[string]string
		status int
	}{
		{desc: "loopback listener", status: 200},
		{desc: "localhost host", hdr: map[string]string{"Host": "localhost" + port}, status: 200},
		{desc: "rebinding host", hdr: map[string]string{"Host": "evil.example" + port}, status: 403},
		{desc: "cross-site browser request", hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}, status: 403},
		{desc: "foreign origin", hdr: map[string]string{"Origin": "http://evil.example"}, status: 403},
		{desc: "same-origin browser request", hdr: map[string]string{"Sec-Fetch-Site": "same-origin"}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if err := f.web.SetState("a", upstream.StateUp); err != nil {
				t.Fatal(err)
			}
			before := f.web.Snapshot().Version
			r := do(t, http.MethodPost, f.base+"/api/v1/pools/web/backends/a/drain", "", tt.hdr)
			if r.status != tt.status {
				t.Fatalf("drain = %d %s, want %d", r.status, r.body, tt.status)
			}
			if changed := f.web.Snapshot().Version != before; changed != (tt.status == 200) {
				t.Errorf("pool changed = %v after %d", changed, r.status)
			}
		})
	}
}

// A listener that the network can reach takes no tokenless writes. The
// sandbox binds only loopback, so this goes through Handler().
func TestWriteWithoutTokenOffLoopback(t *testing.T) {
	tests := []struct {
		desc   string
		listen string
		status int
	}{
		{desc: "all interfaces", listen: ":8081", status: 403},
		{desc: "all ipv4", listen: "0.0.0.0:8081", status: 403},
		{desc: "all ipv6", listen: "[::]:8081", status: 403},
		{desc: "public address", listen: "192.0.2.10:8081", status: 403},
		{desc: "hostname", listen: "admin.internal:8081", status: 403},
		{desc: "ipv4 loopback", listen: "127.0.0.2:8081", status: 200},
		{desc: "ipv6 loopback", listen: "[::1]:8081", status: 200},
		{desc: "localhost", listen: "localhost:8081", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			web, _ := newPools(t)
			s, err := New(Options{Listen: tt.listen, Source: &fakeSource{pools: []*upstream.Pool{web}}, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8081/api/v1/pools/web/backends/a/drain", nil)
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("drain on %s = %d %s, want %d", tt.listen, rec.Code, rec.Body, tt.status)
			}
			if drained := web.Snapshot().Lookup("a").State == upstream.StateDraining; drained != (tt.status == 200) {
				t.Errorf("drained = %v after %d", drained, rec.Code)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		desc    string
		path    string // default /api/v1/pools/web/backends/a
		body    string
		status  int
		errPart string // for errors: part of the message
		check   func(t *testing.T, b *upstream.Backend)
	}{
		{desc: "weight", body: `{"weight": 3}`, status: 200, check: func(t *testing.T, b *upstream.Backend) {
			if b.Weight != 3 || b.EffectiveWeight != 3 || b.State != upstream.StateUp {
				t.Errorf("a = weight %d effective %d %v, want 3 3 up", b.Weight, b.EffectiveWeight, b.State)
			}
		}},
		{desc: "weight 0 takes no traffic", body: `{"weight": 0}`, status: 200, check: func(t *testing.T, b *upstream.Backend) {
			if b.Weight != 0 || b.Available() || b.Status() != "weight-0" {
				t.Errorf("a = weight %d available %v %s, want 0 false weight-0", b.Weight, b.Available(), b.Status())
			}
		}},
		{desc: "state", body: `{"state": "maintenance"}`, status: 200, check: func(t *testing.T, b *upstream.Backend) {
			if b.State != upstream.StateMaintenance || b.Weight != 2 || b.Available() {
				t.Errorf("a = %v weight %d available %v, want maintenance 2 false", b.State, b.Weight, b.Available())
			}
		}},
		{desc: "weight and state", body: `{"weight": 5, "state": "down"}`, status: 200, check: func(t *testing.T, b *upstream.Backend) {
			if b.State != upstream.StateDown || b.Weight != 5 {
				t.Errorf("a = %v weight %d, want down 5", b.State, b.Weight)
			}
		}},
		{desc: "malformed json", body: `{"weight":`, status: 400, errPart: "decoding request body"},
		{desc: "unknown field", body: `{"wieght": 3}`, status: 400, errPart: `unknown field "wieght"`},
		{desc: "weight as string", body: `{"weight": "3"}`, status: 400, errPart: "decoding request body"},
		{desc: "fractional weight", body: `{"weight": 1.5}`, status: 400, errPart: "decoding request body"},
		{desc: "negative weight", body: `{"weight": -1}`, status: 400, errPart: "weight must be 0 or more, not -1"},
		{desc: "unknown state", body: `{"state": "sleeping"}`, status: 400, errPart: `unknown backend state "sleeping"`},
		{desc: "state valid but weight not", body: `{"state": "down", "weight": -2}`, status: 400, errPart: "weight must be 0 or more"},
		{desc: "empty body", body: ``, status: 400, errPart: "empty request body"},
		{desc: "empty object", body: `{}`, status: 400, errPart: "nothing to change"},
		{desc: "nulls", body: `{"weight": null, "state": null}`, status: 400, errPart: "nothing to change"},
		{desc: "two objects", body: `{"weight": 1}{"weight": 9}`, status: 400, errPart: "trailing data"},
		{desc: "array", body: `[{"weight": 1}]`, status: 400, errPart: "decoding request body"},
		{desc: "huge body", body: `{"weight": 1, "state": "` + strings.Repeat("x", 70<<10) + `"}`, status: 413, errPart: "request body exceeds 65536 bytes"},
		{desc: "unknown backend", path: "/api/v1/pools/web/backends/zz", body: `{"weight": 3}`, status: 404, errPart: `pool web: no backend "zz"`},
		{desc: "unknown pool", path: "/api/v1/pools/nope/backends/a", body: `{"weight": 3}`, status: 404, errPart: `no pool "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f := newFixture(t, nil)
			path := tt.path
			if path == "" {
				path = "/api/v1/pools/web/backends/a"
			}
			before := f.web.Snapshot().Version
			r := do(t, http.MethodPut, f.base+path, tt.body, map[string]string{"Content-Type": "application/json"})
			if r.status != tt.status {
				t.Fatalf("PUT %s = %d %s, want %d", tt.body, r.status, r.body, tt.status)
			}
			if tt.status != 200 {
				if msg := r.errMsg(t); !strings.Contains(msg, tt.errPart) {
					t.Errorf("error = %q, want it to contain %q", msg, tt.errPart)
				}
				if f.web.Snapshot().Version != before {
					t.Error("a refused write changed the pool")
				}
				return
			}
			var bs BackendStatus
			if err := json.Unmarshal(r.body, &bs); err != nil {
				t.Fatal(err)
			}
			b := f.web.Snapshot().Lookup("a")
			if bs.Weight != b.Weight || bs.State != b.State.String() || bs.Available != b.Available() {
				t.Errorf("answer %+v does not match the snapshot", bs)
			}
			tt.check(t, b)
		})
	}
}
