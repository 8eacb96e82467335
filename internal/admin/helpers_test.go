package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/upstream"
)

// fakeSource is a runtime with fixed pools, as the supervisor would be
// between two reloads.
type fakeSource struct {
	pools  []*upstream.Pool
	detail map[string]any // "pool/backend" → detail
}

func (f *fakeSource) Pools() []*upstream.Pool { return f.pools }

func (f *fakeSource) HealthDetail(pool, backend string) any {
	if d, ok := f.detail[pool+"/"+backend]; ok {
		return d
	}
	return nil
}

// fixture is a started admin server over two real pools:
//
//	web: a (up, weight 2, zone z1, tags), b (up, weight 1), c (draining)
//	api: x (up)
type fixture struct {
	srv  *Server
	base string
	web  *upstream.Pool
	api  *upstream.Pool
	src  *fakeSource
	logs *syncBuffer
}

func newPools(t *testing.T) (web, api *upstream.Pool) {
	t.Helper()
	web = upstream.NewPool("web", upstream.Options{})
	api = upstream.NewPool("api", upstream.Options{})
	t.Cleanup(web.Close)
	t.Cleanup(api.Close)
	if err := web.Update([]upstream.Spec{
		{Name: "a", Addr: "10.0.0.1:80", Weight: 2, Zone: "z1", Tags: map[string]string{"canary": "true"}},
		{Name: "b", Addr: "10.0.0.2:80", Weight: 1},
		{Name: "c", Addr: "10.0.0.3:80", Weight: 1, State: upstream.StateDraining},
	}); err != nil {
		t.Fatal(err)
	}
	if err := api.Update([]upstream.Spec{{Name: "x", Addr: "10.0.1.1:9000", Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	return web, api
}

// newFixture starts a server on 127.0.0.1:0; edit may change the options
// before New.
func newFixture(t *testing.T, edit func(*Options)) *fixture {
	t.Helper()
	web, api := newPools(t)
	f := &fixture{
		web:  web,
		api:  api,
		src:  &fakeSource{pools: []*upstream.Pool{web, api}, detail: map[string]any{"web/a": map[string]any{"last": "ok", "successes": 3}}},
		logs: &syncBuffer{},
	}
	opts := Options{
		Listen:   "127.0.0.1:0",
		Source:   f.src,
		Registry: prometheus.NewRegistry(),
		Version:  "v1.2.3-test",
		Logger:   slog.New(slog.NewTextHandler(io.MultiWriter(f.logs, t.Output()), nil)),
	}
	if edit != nil {
		edit(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = s
	f.start(t)
	return f
}

func (f *fixture) start(t *testing.T) {
	t.Helper()
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	f.base = "http://" + f.srv.Addr().String()
}

// response is what a test needs of an HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errMsg decodes the API's {"error": "..."} body.
func (r response) errMsg(t *testing.T) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	return e.Error
}

// do sends one request; hdr may carry Authorization, Host and the like.
func do(t *testing.T, method, url, body string, hdr map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// syncBuffer collects log output written by server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLogger sends a server's logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func readyNames(p *upstream.Pool) []string {
	var n []string
	for _, b := range p.Snapshot().Ready {
		n = append(n, b.Name)
	}
	return n
}
