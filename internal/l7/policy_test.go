package l7

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

func intp(n int) *int { return &n }

// status503 answers 503 and counts its hits.
func status503(hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	})
}

// echoBody answers with its name and the request body.
func echoBody(name string, hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s:%s", name, b)
	})
}

func do(t testing.TB, c *http.Client, method, url, body string, hdr http.Header) (int, string, http.Header) {
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
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestRetryStatuses(t *testing.T) {
	var badHits, goodHits atomic.Int64
	bad := startBackend(t, status503(&badHits))
	good := startBackend(t, echoBody("good", &goodHits))
	// rr starts at either backend; every request is tried on both at most.
	tests := []struct {
		desc   string
		route  config.Route
		method string
		body   string
		status int
		want   string
	}{
		{desc: "GET retried on 503", route: config.Route{Retry: config.RouteRetry{Statuses: []int{503}}},
			method: "GET", status: 200, want: "good:"},
		{desc: "POST not retried without opt-in", route: config.Route{Retry: config.RouteRetry{Statuses: []int{503}}},
			method: "POST", body: "payload", status: 503},
		{desc: "POST retried with its body when the route opts in", route: config.Route{Retry: config.RouteRetry{Statuses: []int{503}, NonIdempotent: true}},
			method: "POST", body: "payload", status: 200, want: "good:payload"},
		{desc: "POST larger than the replay buffer is not retried", route: config.Route{Retry: config.RouteRetry{Statuses: []int{503}, NonIdempotent: true, MaxBodyBytes: 4}},
			method: "POST", body: "payload", status: 503},
		{desc: "retries off", route: config.Route{Retry: config.RouteRetry{Statuses: []int{503}, Attempts: intp(0)}},
			method: "GET", status: 503},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			pool := newPool(t, "p", bad.addr, good.addr)
			tc.route.Pool = "p"
			_, url := startProxy(t, Options{}, []config.Route{tc.route}, map[string]*upstream.Pool{"p": pool})
			c := &http.Client{Timeout: 5 * time.Second}
			sawBad := false
			for range 4 {
				badBefore := badHits.Load()
				status, body, _ := do(t, c, tc.method, url+"/", tc.body, nil)
				hitBad := badHits.Load() > badBefore
				sawBad = sawBad || hitBad
				if !hitBad {
					continue // went to the good backend first: nothing to retry
				}
				if status != tc.status || (tc.want != "" && body != tc.want) {
					t.Fatalf("got %d %q, want %d %q", status, body, tc.status, tc.want)
				}
			}
			if !sawBad {
				t.Fatal("no request reached the failing backend; the test proved nothing")
			}
		})
	}
}

func TestRetryBudgetStopsStorm(t *testing.T) {
	var hits atomic.Int64
	a, b := startBackend(t, status503(&hits)), startBackend(t, status503(&hits))
	pool := newPool(t, "p", a.addr, b.addr)
	route := config.Route{Pool: "p", Retry: config.RouteRetry{Statuses: []int{503}, Attempts: intp(1), BudgetPercent: 10, BudgetMinPerSec: 1}}
	_, url := startProxy(t, Options{}, []config.Route{route}, map[string]*upstream.Pool{"p": pool})
	c := &http.Client{Timeout: 5 * time.Second}
	const n = 300
	for range n {
		if status, _, _ := do(t, c, "GET", url+"/", "", nil); status != 503 {
			t.Fatalf("status %d, want 503 (every backend fails)", status)
		}
	}
	// Without a budget every request would be sent twice (600 hits). The
	// budget allows 10% of the requests plus 1 per second over the ten
	// seconds of the window.
	got := hits.Load()
	if max := int64(n + n/10 + 10 + 2); got > max || got <= n {
		t.Fatalf("backends saw %d requests for %d client requests; want more than %d (some retries) and at most %d", got, n, n, max)
	}
}

func TestRetryBudgetWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newRetryBudget(0.2, 1, func() time.Time { return now })
	for range 100 {
		b.request()
	}
	allowed := 0
	for range 100 {
		if b.withdraw() {
			allowed++
		}
	}
	if want := 20 + 10; allowed != want {
		t.Fatalf("allowed %d retries for 100 requests, want %d (20%% plus 1/s over 10s)", allowed, want)
	}
	now = now.Add(11 * time.Second) // the window has passed
	if allowed = 0; true {
		for range 100 {
			if b.withdraw() {
				allowed++
			}
		}
	}
	if allowed != 10 {
		t.Fatalf("after the window: allowed %d, want the 10 of the minimum", allowed)
	}
}

// TestKillBackendUnderLoad kills one of two backends while clients send
// GETs as fast as they can: not one request may fail.
func TestKillBackendUnderLoad(t *testing.T) {
	var hitsA, hitsB atomic.Int64
	a, b := startBackend(t, echoBody("a", &hitsA)), startBackend(t, echoBody("b", &hitsB))
	pool := newPool(t, "p", a.addr, b.addr)
	_, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": pool})
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	var stop atomic.Bool
	var total, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 5000; i++ {
				resp, err := c.Get(url + "/")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", resp.StatusCode, body, err))
				}
			}
		}()
	}
	// The deadlines below only bound the test: what it asserts is that no
	// request fails, not how fast they go (a loaded CI machine with -race
	// once took over 5 s for the 300 requests after the kill).
	progress := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("timed out waiting for %s: %d requests, %d failed (first: %v), hits a %d b %d",
					what, total.Load(), failed.Load(), firstErr.Load(), hitsA.Load(), hitsB.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	progress("load on both backends", func() bool { return hitsA.Load() > 50 && hitsB.Load() > 50 })
	a.srv.Close()
	before := hitsB.Load()
	progress("load after the kill", func() bool { return hitsB.Load() > before+300 })
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed after killing a backend; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
}

func TestEjectOnStatus(t *testing.T) {
	var hits atomic.Int64
	be := startBackend(t, status503(&hits))
	rep := &countingReporter{}
	pool := newPool(t, "p", be.addr)
	routes := []config.Route{
		{PathPrefix: "/eject", Pool: "p", EjectOnStatus: []int{503}},
		{Pool: "p"},
	}
	_, url := startProxy(t, Options{Passive: rep}, routes, map[string]*upstream.Pool{"p": pool})
	do(t, http.DefaultClient, "GET", url+"/plain", "", nil)
	if rep.failed.Load() != 0 || rep.ok.Load() != 1 {
		t.Fatalf("a 503 on a route without eject_on_status: %d failures %d successes, want 0 1", rep.failed.Load(), rep.ok.Load())
	}
	do(t, http.DefaultClient, "GET", url+"/eject", "", nil)
	if rep.failed.Load() != 1 {
		t.Fatalf("a 503 listed in eject_on_status was not reported as a failure")
	}
}

func TestHashKeys(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	specs := make([]upstream.Spec, len(names))
	for i, n := range names {
		specs[i] = upstream.Spec{Addr: startBackend(t, named(n)).addr, Weight: 1}
	}
	pools := map[string]*upstream.Pool{}
	routes := []config.Route{}
	for _, k := range []string{"header:X-User", "cookie:uid", "uri"} {
		name := strings.NewReplacer(":", "-").Replace(k)
		pools[name] = newPoolSpecs(t, name, "maglev", specs)
		routes = append(routes, config.Route{PathPrefix: "/" + name + "/", Pool: name, HashKey: k})
	}
	_, url := startProxy(t, Options{}, routes, pools)
	c := &http.Client{Timeout: 5 * time.Second}
	tests := []struct {
		desc, path string
		hdr        func(i int) http.Header
	}{
		{desc: "header", path: "/header-X-User/", hdr: func(i int) http.Header { return http.Header{"X-User": {strconv.Itoa(i)}} }},
		{desc: "cookie", path: "/cookie-uid/", hdr: func(i int) http.Header { return http.Header{"Cookie": {"a=b; uid=" + strconv.Itoa(i)}} }},
		{desc: "uri", path: "/uri/", hdr: func(int) http.Header { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			seen := map[string]bool{}
			for i := range 40 {
				p := tc.path + strconv.Itoa(i)
				_, first, _ := do(t, c, "GET", url+p, "", tc.hdr(i))
				for range 3 {
					if _, again, _ := do(t, c, "GET", url+p, "", tc.hdr(i)); again != first {
						t.Fatalf("key %d went to %q then %q", i, first, again)
					}
				}
				seen[first] = true
			}
			if len(seen) < 3 {
				t.Fatalf("40 keys reached only %v; the key is not being hashed", seen)
			}
		})
	}
}

func TestStickyCookie(t *testing.T) {
	names := []string{"a", "b", "c"}
	specs := make([]upstream.Spec, len(names))
	for i, n := range names {
		specs[i] = upstream.Spec{Name: n, Addr: startBackend(t, named(n)).addr, Weight: 1}
	}
	pool := newPoolSpecs(t, "p", "rr", specs)
	route := config.Route{Pool: "p", Sticky: &config.RouteSticky{Secret: "0123456789abcdef", MaxAge: config.Duration(time.Hour)}}
	_, url := startProxy(t, Options{}, []config.Route{route}, map[string]*upstream.Pool{"p": pool})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Timeout: 5 * time.Second, Jar: jar}

	_, first, h := do(t, c, "GET", url+"/", "", nil)
	sc := h.Get("Set-Cookie")
	if !strings.HasPrefix(sc, "strata_sticky=") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "Max-Age=3600") {
		t.Fatalf("Set-Cookie %q", sc)
	}
	for range 10 {
		_, got, h := do(t, c, "GET", url+"/", "", nil)
		if got != first {
			t.Fatalf("sticky client moved from %q to %q", first, got)
		}
		if h.Get("Set-Cookie") != "" {
			t.Fatalf("a valid cookie was replaced: %q", h.Get("Set-Cookie"))
		}
	}
	// Draining the backend moves the client, with a new cookie, and it
	// stays on its new backend.
	if err := pool.SetState(first, upstream.StateDraining); err != nil {
		t.Fatal(err)
	}
	_, moved, h := do(t, c, "GET", url+"/", "", nil)
	if moved == first || h.Get("Set-Cookie") == "" {
		t.Fatalf("after draining %q: went to %q with Set-Cookie %q", first, moved, h.Get("Set-Cookie"))
	}
	for range 5 {
		if _, got, _ := do(t, c, "GET", url+"/", "", nil); got != moved {
			t.Fatalf("after moving to %q, went to %q", moved, got)
		}
	}
	// A removed backend, and a forged cookie, get a fresh pick.
	if err := pool.Update(specs[:0:0]); err != nil {
		t.Fatal(err)
	}
	var keep []upstream.Spec
	for _, s := range specs {
		if s.Name != moved {
			keep = append(keep, s)
		}
	}
	if err := pool.Update(keep); err != nil {
		t.Fatal(err)
	}
	_, got, h := do(t, c, "GET", url+"/", "", nil)
	if got == moved || h.Get("Set-Cookie") == "" {
		t.Fatalf("after removing %q: went to %q with Set-Cookie %q", moved, got, h.Get("Set-Cookie"))
	}
	_, _, h = do(t, http.DefaultClient, "GET", url+"/", "", http.Header{"Cookie": {"strata_sticky=forged"}})
	if h.Get("Set-Cookie") == "" {
		t.Fatal("a forged cookie was accepted")
	}
}

func TestStickyDerivedKeyIsStable(t *testing.T) {
	pool := newPool(t, "p", "127.0.0.1:1")
	mk := func() *sticky {
		s, err := newSticky(&config.RouteSticky{}, "ln", "r", []*upstream.Pool{pool}, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Two config loads (or two nodes) must agree on the cookie value.
	if a, b := mk().value("p", "x"), mk().value("p", "x"); a != b {
		t.Fatalf("derived keys differ between loads: %q %q", a, b)
	}
	s2, _ := newSticky(&config.RouteSticky{Secret: "another secret 123"}, "ln", "r", []*upstream.Pool{pool}, quietLogger())
	if mk().value("p", "x") == s2.value("p", "x") {
		t.Fatal("a configured secret does not change the cookie")
	}
}

func TestCanarySplit(t *testing.T) {
	var v1, v2 atomic.Int64
	pools := map[string]*upstream.Pool{
		"v1": newPool(t, "v1", startBackend(t, echoBody("v1", &v1)).addr),
		"v2": newPool(t, "v2", startBackend(t, echoBody("v2", &v2)).addr),
	}
	route := config.Route{Pool: "v1", Split: []config.RouteSplit{
		{Pool: "v2", Weight: 10, Headers: map[string]string{"X-Canary": "1"}},
		{Pool: "v2", Cookies: map[string]string{"beta": "yes"}},
	}}
	_, url := startProxy(t, Options{}, []config.Route{route}, pools)
	addr := strings.TrimPrefix(url, "http://")

	// Raw keep-alive clients: the Go client under -race would make this
	// test slow for no gain.
	const n, workers = 10000, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		bc := newBenchClientTo(t, addr, "/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / workers {
				if err := bc.roundTrip(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	share := float64(v2.Load()) / n
	if share < 0.08 || share > 0.12 {
		t.Fatalf("v2 got %.2f%% of %d requests, want 10%% ± 2", share*100, n)
	}
	// Conditions send every matching request to the canary.
	c := &http.Client{Timeout: 5 * time.Second}
	for _, h := range []http.Header{{"X-Canary": {"1"}}, {"Cookie": {"a=1; beta=yes"}}} {
		for range 20 {
			if _, body, _ := do(t, c, "GET", url+"/", "", h); !strings.HasPrefix(body, "v2") {
				t.Fatalf("request with %v went to %q", h, body)
			}
		}
	}
}

func TestRateLimit(t *testing.T) {
	be := startBackend(t, named("a"))
	pool := newPool(t, "p", be.addr)
	routes := []config.Route{
		{PathPrefix: "/client", Pool: "p", RateLimit: &config.RouteRateLimit{Rate: 2, Per: config.Duration(time.Minute), Burst: 2}},
		{PathPrefix: "/key", Pool: "p", RateLimit: &config.RouteRateLimit{Rate: 1, Per: config.Duration(time.Minute), Key: "header:X-Api-Key"}},
	}
	_, url := startProxy(t, Options{}, routes, map[string]*upstream.Pool{"p": pool})
	c := &http.Client{Timeout: 5 * time.Second}
	for i := range 2 {
		if status, _, _ := do(t, c, "GET", url+"/client", "", nil); status != 200 {
			t.Fatalf("request %d within the burst: %d", i, status)
		}
	}
	status, _, h := do(t, c, "GET", url+"/client", "", nil)
	if status != http.StatusTooManyRequests {
		t.Fatalf("third request: %d, want 429", status)
	}
	// One token a minute for two: the next comes in 30s.
	if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 29 || ra > 30 {
		t.Fatalf("Retry-After %q, want about 30", h.Get("Retry-After"))
	}
	for _, key := range []string{"k1", "k2"} {
		if status, _, _ := do(t, c, "GET", url+"/key", "", http.Header{"X-Api-Key": {key}}); status != 200 {
			t.Fatalf("first request of key %s: %d", key, status)
		}
		if status, _, _ := do(t, c, "GET", url+"/key", "", http.Header{"X-Api-Key": {key}}); status != 429 {
			t.Fatalf("second request of key %s: %d, want 429", key, status)
		}
	}
}

func TestRateLimitKeysBounded(t *testing.T) {
	l, err := newRateLimiter(&config.RouteRateLimit{Rate: 1, MaxKeys: 64, Key: "header:K"}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "http://x/", nil)
	for i := range 10000 {
		r.Header.Set("K", strconv.Itoa(i))
		l.allow(r, "127.0.0.1")
	}
	if n := l.size(); n > 64 {
		t.Fatalf("%d keys kept, want at most 64", n)
	}
}

func TestBodyLimit(t *testing.T) {
	var hits atomic.Int64
	be := startBackend(t, echoBody("a", &hits))
	pool := newPool(t, "p", be.addr)
	s := NewServer(Options{Logger: quietLogger()})
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", MaxBodyBytes: 1000, Routes: []config.Route{
		{PathPrefix: "/retry", Pool: "p", Retry: config.RouteRetry{NonIdempotent: true}},
		{Pool: "p"},
	}}}}
	if err := s.Apply(cfg, map[string]*upstream.Pool{"p": pool}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, s) })
	url := "http://" + s.Addrs()[0].String()
	big := strings.Repeat("x", 1001)
	tests := []struct {
		desc, path string
		body       io.Reader
		status     int
	}{
		{desc: "within the limit", path: "/", body: strings.NewReader(big[:1000]), status: 200},
		{desc: "declared length over the limit", path: "/", body: strings.NewReader(big), status: 413},
		{desc: "chunked body over the limit", path: "/", body: io.MultiReader(strings.NewReader(big[:600]), strings.NewReader(big[600:])), status: 413},
		{desc: "chunked over the limit while buffered for replay", path: "/retry", body: io.MultiReader(strings.NewReader(big[:600]), strings.NewReader(big[600:])), status: 413},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			req, _ := http.NewRequest("POST", url+tc.path, tc.body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

func TestHeaderLimit(t *testing.T) {
	be := startBackend(t, named("a"))
	pool := newPool(t, "p", be.addr)
	s := NewServer(Options{Logger: quietLogger()})
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", MaxHeaderBytes: 2048, Routes: []config.Route{{Pool: "p"}}}}}
	if err := s.Apply(cfg, map[string]*upstream.Pool{"p": pool}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, s) })
	url := "http://" + s.Addrs()[0].String()
	// The limit is the whole head: request line and fields.
	for _, tc := range []struct {
		size   int
		status int
	}{{1000, 200}, {1900, 200}, {2100, 431}} {
		req, _ := http.NewRequest("GET", url+"/", nil)
		req.Header.Set("X-Big", strings.Repeat("y", tc.size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("header of %d bytes: status %d, want %d", tc.size, resp.StatusCode, tc.status)
		}
	}
}

// TestMaxConns: at max_conns new connections wait in the kernel's accept
// queue, which the metrics show, until a slot frees or a reload lifts the
// bound.
func TestMaxConns(t *testing.T) {
	be := startBackend(t, named("a"))
	pool := newPool(t, "p", be.addr)
	reg := prometheus.NewRegistry()
	s := NewServer(Options{Logger: quietLogger(), Registry: reg})
	cfg := &config.L7{Listeners: []config.Listener{{Name: "m", Listen: "127.0.0.1:0", MaxConns: 1, Routes: []config.Route{{Pool: "p"}}}}}
	if err := s.Apply(cfg, map[string]*upstream.Pool{"p": pool}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, s) })
	addr := s.Addrs()[0].String()
	c1 := newBenchClientTo(t, addr, "/")
	if err := c1.roundTrip(); err != nil {
		t.Fatal(err)
	}
	c2 := newBenchClientTo(t, addr, "/")
	done := make(chan error, 1)
	go func() { done <- c2.roundTrip() }()
	m := map[string]string{"listener": "m"}
	eventually(t, 5*time.Second, "the second connection to wait in the accept queue", func() bool {
		return metricValue(t, reg, "strata_l7_accept_queue", m) == 1
	})
	select {
	case err := <-done:
		t.Fatalf("a second connection was served while the first was open (err %v)", err)
	default:
	}
	if got := metricValue(t, reg, "strata_l7_max_conns_reached_total", m); got != 1 {
		t.Fatalf("strata_l7_max_conns_reached_total = %v, want 1", got)
	}
	c1.c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second connection was not served after the first closed")
	}
	// A reload lifts the bound for waiting connections.
	cfg.Listeners[0].Listen = addr
	cfg.Listeners[0].MaxConns = 0
	if err := s.Apply(cfg, map[string]*upstream.Pool{"p": pool}); err != nil {
		t.Fatal(err)
	}
	c3 := newBenchClientTo(t, addr, "/")
	if err := c3.roundTrip(); err != nil {
		t.Fatal(err)
	}
}

func newBenchClientTo(t *testing.T, addr, path string) *benchClient {
	bc := newBenchClient(t, addr)
	bc.req = []byte("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
	return bc
}

func (bc *benchClient) roundTrip() error {
	bc.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := bc.c.Write(bc.req); err != nil {
		return err
	}
	if _, err := readResponseHead(bc.br, &bc.head); err != nil {
		return err
	}
	if bc.head.status != 200 {
		return fmt.Errorf("status %d", bc.head.status)
	}
	_, err := io.CopyN(io.Discard, bc.br, bc.head.contentLength)
	return err
}

func TestRouteTimeouts(t *testing.T) {
	var slowHits, fastHits atomic.Int64
	slow := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slowHits.Add(1)
		// Slow is what this backend is for: the route timeouts under
		// test are shorter than this.
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "slow")
	}))
	fast := startBackend(t, echoBody("fast", &fastHits))
	pools := map[string]*upstream.Pool{"slow": newPool(t, "slow", slow.addr), "both": newPool(t, "both", slow.addr, fast.addr)}
	fb := config.RouteTimeouts{FirstByte: config.Duration(50 * time.Millisecond)}
	routes := []config.Route{
		{PathPrefix: "/slow", Pool: "slow", Timeouts: fb},
		{PathPrefix: "/retry", Pool: "both", Timeouts: fb, Retry: config.RouteRetry{OnTimeout: true}},
		{Pool: "slow", Timeouts: config.RouteTimeouts{FirstByte: config.Duration(2 * time.Second)}},
	}
	_, url := startProxy(t, Options{}, routes, pools)
	c := &http.Client{Timeout: 5 * time.Second}
	if status, _, _ := do(t, c, "GET", url+"/slow", "", nil); status != http.StatusGatewayTimeout {
		t.Fatalf("first_byte exceeded: %d, want 504", status)
	}
	if status, body, _ := do(t, c, "GET", url+"/", "", nil); status != 200 || body != "slow" {
		t.Fatalf("within first_byte: %d %q", status, body)
	}
	for range 4 {
		if status, body, _ := do(t, c, "GET", url+"/retry", "", nil); status != 200 || body != "fast:" {
			t.Fatalf("on_timeout retry: %d %q, want 200 from the fast backend", status, body)
		}
	}
}
