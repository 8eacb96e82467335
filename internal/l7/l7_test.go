package l7

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

func TestRouting(t *testing.T) {
	pools := map[string]*upstream.Pool{}
	for _, n := range []string{"exact", "wild", "api", "any"} {
		pools[n] = newPool(t, n, startBackend(t, named(n)).addr)
	}
	routes := []config.Route{
		{Host: "www.example.com", Pool: "exact"},
		{Host: "*.example.com", PathPrefix: "/api", Pool: "api"},
		{Host: "*.example.com", Pool: "wild"},
		{Host: "other.test", PathPrefix: "/x", Pool: "any"},
	}
	_, url := startProxy(t, Options{}, routes, pools)
	c := &http.Client{Timeout: 5 * time.Second}
	tests := []struct {
		desc, host, path string
		status           int
		want             string
	}{
		{desc: "exact host", host: "www.example.com", path: "/", status: 200, want: "exact"},
		{desc: "exact host ignores case and port", host: "WWW.Example.COM:8080", path: "/a", status: 200, want: "exact"},
		{desc: "wildcard with path prefix", host: "a.example.com", path: "/api/v1", status: 200, want: "api"},
		{desc: "wildcard, other path", host: "b.c.example.com", path: "/home", status: 200, want: "wild"},
		{desc: "wildcard does not match the bare domain", host: "example.com", path: "/", status: 404},
		{desc: "prefix matches", host: "other.test", path: "/xyz", status: 200, want: "any"},
		{desc: "prefix does not match", host: "other.test", path: "/y", status: 404},
		{desc: "unknown host", host: "nobody.test", path: "/", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			status, body, _ := get(t, c, url+tc.path, tc.host)
			if status != tc.status {
				t.Fatalf("status %d, want %d (body %q)", status, tc.status, body)
			}
			if tc.want != "" && body != tc.want {
				t.Fatalf("routed to %q, want %q", body, tc.want)
			}
		})
	}
}

func TestRouteTableMatch(t *testing.T) {
	p := upstream.NewPool("p", upstream.Options{})
	tests := []struct {
		desc  string
		route config.Route
		host  string
		path  string
		match bool
	}{
		{desc: "empty host matches any", route: config.Route{}, host: "x.y", path: "/", match: true},
		{desc: "ipv6 literal with port", route: config.Route{Host: "[::1]"}, host: "[::1]:80", path: "/", match: true},
		{desc: "trailing dot", route: config.Route{Host: "a.test"}, host: "a.test.", path: "/", match: true},
		{desc: "suffix needs a label", route: config.Route{Host: "*.a.test"}, host: ".a.test", path: "/", match: false},
		{desc: "path prefix", route: config.Route{PathPrefix: "/static/"}, host: "h", path: "/static", match: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			tc.route.Pool = "p"
			tbl, err := buildTable(&config.Listener{Listen: "x", Routes: []config.Route{tc.route}}, map[string]*upstream.Pool{"p": p})
			if err != nil {
				t.Fatal(err)
			}
			if got := tbl.match(tc.host, tc.path) != nil; got != tc.match {
				t.Fatalf("match(%q, %q) = %v, want %v", tc.host, tc.path, got, tc.match)
			}
		})
	}
}

func TestApplyRejects(t *testing.T) {
	pools := map[string]*upstream.Pool{"p": upstream.NewPool("p", upstream.Options{})}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		desc string
		ln   config.Listener
		want string
	}{
		{desc: "unknown pool", ln: config.Listener{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "nope"}}}, want: `unknown pool "nope"`},
		{desc: "bad wildcard", ln: config.Listener{Listen: "127.0.0.1:0", Routes: []config.Route{{Host: "a.*.com", Pool: "p"}}}, want: "invalid host pattern"},
		{desc: "relative prefix", ln: config.Listener{Listen: "127.0.0.1:0", Routes: []config.Route{{PathPrefix: "api", Pool: "p"}}}, want: "must start with /"},
		{desc: "prefix with a dot segment", ln: config.Listener{Listen: "127.0.0.1:0", Routes: []config.Route{{PathPrefix: "/a/../b/", Pool: "p"}}}, want: "path_prefix \"/a/../b/\" has an empty or dot segment"},
		{desc: "prefix with a doubled slash", ln: config.Listener{Listen: "127.0.0.1:0", Routes: []config.Route{{PathPrefix: "//a/", Pool: "p"}}}, want: "empty or dot segment"},
		{desc: "exact path ending in a dot segment", ln: config.Listener{Listen: "127.0.0.1:0", Routes: []config.Route{{Path: "/a/.", Pool: "p"}}}, want: "path \"/a/.\" has an empty or dot segment"},
		{desc: "empty listen", ln: config.Listener{Routes: []config.Route{{Pool: "p"}}}, want: "empty listen address"},
		{desc: "port in use", ln: config.Listener{Listen: busy.Addr().String(), Routes: []config.Route{{Pool: "p"}}}, want: "address already in use"},
	}
	s, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, pools)
	before := s.Addrs()
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			cfg := &config.L7{Listeners: []config.Listener{{Listen: before[0].String(), Routes: []config.Route{{Pool: "p"}}}, tc.ln}}
			err := s.Apply(cfg, pools)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply error %v, want one containing %q", err, tc.want)
			}
			if got := s.Addrs(); len(got) != 1 || got[0].String() != before[0].String() {
				t.Fatalf("a failed Apply changed the listeners: %v", got)
			}
		})
	}
	// The original listener and table still serve: the pool has no
	// backend, so 503 proves the route survived.
	status, _, _ := get(t, http.DefaultClient, url+"/", "")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("after failed Applies: status %d, want 503", status)
	}
}

func TestWeights(t *testing.T) {
	if _, err := balance.Builder("wrr", balance.Options{}); err != nil {
		t.Fatalf("wrr: %v", err)
	}
	a, b := startBackend(t, named("a")), startBackend(t, named("b"))
	pool := newPoolSpecs(t, "w", "wrr", []upstream.Spec{{Addr: a.addr, Weight: 3}, {Addr: b.addr, Weight: 1}})
	_, url := startProxy(t, Options{}, []config.Route{{Pool: "w"}}, map[string]*upstream.Pool{"w": pool})
	counts := map[string]int{}
	for range 400 {
		_, body, _ := get(t, http.DefaultClient, url+"/", "")
		counts[body]++
	}
	if counts["a"] != 300 || counts["b"] != 100 {
		t.Fatalf("weights 3:1 gave %v, want a:300 b:100", counts)
	}
}

// echo answers with the SHA-256 of the request body in a header and the
// body itself, chunked unless ?cl=1 asks for a Content-Length.
func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("X-Request-Sha256", hex.EncodeToString(sum[:]))
		w.Header().Set("X-Request-Chunked", fmt.Sprint(len(r.TransferEncoding) > 0))
		if r.URL.Query().Get("cl") == "1" {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		}
		w.Write(body)
	})
}

func TestBodies(t *testing.T) {
	be := startBackend(t, echo())
	_, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)})
	big := make([]byte, 10<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	tests := []struct {
		desc        string
		size        int
		chunkedReq  bool
		clResp      bool
		wantChunked string
	}{
		{desc: "small, content-length both ways", size: 100, clResp: true, wantChunked: "false"},
		{desc: "empty POST", size: 0, clResp: true, wantChunked: "false"},
		{desc: "10 MB request with length, chunked response", size: 10 << 20, wantChunked: "false"},
		{desc: "10 MB chunked request, content-length response", size: 10 << 20, chunkedReq: true, clResp: true, wantChunked: "true"},
		{desc: "chunked both ways", size: 70000, chunkedReq: true, wantChunked: "true"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			payload := big[:tc.size]
			var body io.Reader = strings.NewReader(string(payload))
			if tc.chunkedReq {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			u := url + "/echo"
			if tc.clResp {
				u += "?cl=1"
			}
			req, _ := http.NewRequest(http.MethodPost, u, body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(payload)
			if h := resp.Header.Get("X-Request-Sha256"); h != hex.EncodeToString(sum[:]) {
				t.Fatalf("backend saw a different request body (sha %q; status %d, %d bytes: %.200q)", h, resp.StatusCode, len(got), got)
			}
			if sha256.Sum256(got) != sum {
				t.Fatalf("response body differs: %d bytes, want %d", len(got), len(payload))
			}
			if h := resp.Header.Get("X-Request-Chunked"); h != tc.wantChunked {
				t.Fatalf("backend saw chunked=%s, want %s", h, tc.wantChunked)
			}
			if tc.clResp && resp.ContentLength != int64(tc.size) {
				t.Fatalf("Content-Length %d, want %d", resp.ContentLength, tc.size)
			}
		})
	}
}

// TestNoBodyResponses checks HEAD, 204 and 304 on one raw keep-alive
// connection: a stray body byte would corrupt the next response.
func TestNoBodyResponses(t *testing.T) {
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(304)
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	}))
	_, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	tests := []struct {
		desc, method, path string
		status             int
		body               string
		length             string
	}{
		{desc: "HEAD keeps the length, sends no body", method: "HEAD", path: "/", status: 200, length: "5"},
		{desc: "204", method: "GET", path: "/204", status: 204},
		{desc: "304", method: "GET", path: "/304", status: 304},
		{desc: "GET after them", method: "GET", path: "/", status: 200, body: "hello", length: "5"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", tc.method, tc.path)
			req, _ := http.NewRequest(tc.method, tc.path, nil)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if got := resp.Header.Get("Content-Length"); got != tc.length {
				t.Fatalf("Content-Length %q, want %q", got, tc.length)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Host", r.Host)
		var hop []string
		for _, h := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization", "Upgrade", "Te"} {
			if r.Header.Get(h) != "" {
				hop = append(hop, h)
			}
		}
		w.Header().Set("X-Seen-Hop", strings.Join(hop, ","))
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "1")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		io.WriteString(w, "ok")
	}))
	_, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)})
	req, _ := http.NewRequest("GET", url+"/h", nil)
	req.Host = "app.test"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic eA==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	checks := []struct{ desc, got, want string }{
		// The client is not a trusted proxy: its X-Forwarded-For is
		// replaced (forwarded_test.go covers trusted clients).
		{"X-Forwarded-For replaced", resp.Header.Get("X-Seen-XFF"), "127.0.0.1"},
		{"Host passed through", resp.Header.Get("X-Seen-Host"), "app.test"},
		{"hop-by-hop request headers removed", resp.Header.Get("X-Seen-Hop"), ""},
		{"response header named by Connection removed", resp.Header.Get("X-Internal"), ""},
		{"repeated response headers kept", strings.Join(resp.Header.Values("Set-Cookie"), ";"), "a=1;b=2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.desc, c.got, c.want)
		}
	}
}

func TestUpgradeWithBodyNotImplemented(t *testing.T) {
	be := startBackend(t, named("x"))
	_, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)})
	req, _ := http.NewRequest("POST", url+"/ws", strings.NewReader("body"))
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("status %d, want 501", resp.StatusCode)
	}
}

func TestKeepAliveReuse(t *testing.T) {
	a, b := startBackend(t, named("a")), startBackend(t, named("b"))
	_, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": newPool(t, "p", a.addr, b.addr)})
	for range 200 {
		if status, _, _ := get(t, http.DefaultClient, url+"/", ""); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if n := a.conns.Load() + b.conns.Load(); n != 2 {
		t.Fatalf("200 sequential requests opened %d backend connections, want 2", n)
	}
	// Concurrent load: connections are bounded by concurrency, not by
	// requests.
	const workers, each = 16, 50
	var wg sync.WaitGroup
	var failed atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				resp, err := c.Get(url + "/")
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	if n := a.conns.Load() + b.conns.Load(); n > 2+2*workers {
		t.Fatalf("%d requests by %d workers opened %d backend connections", workers*each, workers, n)
	}
}

// closingBackend answers each request and then closes the connection
// without announcing it, which is what a backend's idle timeout looks like
// to a proxy holding the connection in its pool.
func closingBackend(t *testing.T) (addr string, closed chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	closed = make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err == nil {
					io.Copy(io.Discard, req.Body)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
				c.Close()
				closed <- struct{}{}
			}()
		}
	}()
	return ln.Addr().String(), closed
}

func TestStaleConnectionRetried(t *testing.T) {
	addr, closed := closingBackend(t)
	rep := &countingReporter{}
	_, url := startProxy(t, Options{Passive: rep}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": newPool(t, "p", addr)})
	tests := []struct{ desc, method, body string }{
		{desc: "GET is replayed on a fresh connection", method: "GET"},
		{desc: "GET again", method: "GET"},
		{desc: "POST with a body finds the dead connection before sending", method: "POST", body: "payload"},
		{desc: "GET after POST", method: "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url+"/", strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
			}
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("backend did not close the connection")
			}
		})
	}
	if f := rep.failed.Load(); f != 0 {
		t.Fatalf("stale connections were reported as %d backend failures", f)
	}
}

func TestBackendKilled(t *testing.T) {
	a, b := startBackend(t, named("a")), startBackend(t, named("b"))
	rep := &countingReporter{}
	pool := newPool(t, "p", a.addr, b.addr)
	_, url := startProxy(t, Options{Passive: rep}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": pool})
	for range 10 {
		get(t, http.DefaultClient, url+"/", "")
	}
	a.srv.Close() // closes its listener and every pooled connection
	for i := range 50 {
		status, body, _ := get(t, http.DefaultClient, url+"/", "")
		if status != 200 || body != "b" {
			t.Fatalf("request %d after killing a: %d %q, want 200 b", i, status, body)
		}
	}
	if rep.failed.Load() == 0 {
		t.Fatal("connection failures to the dead backend were not reported")
	}
	dead := pool.Snapshot().Lookup(a.addr)
	if dead.Failures.Load() == 0 || dead.Active.Load() != 0 {
		t.Fatalf("dead backend stats: failures %d active %d", dead.Failures.Load(), dead.Active.Load())
	}
	// A POST whose connection failed was never sent, so it too goes to
	// the other backend (nginx's proxy_next_upstream error does the same).
	for i := range 4 {
		resp, err := http.Post(url+"/", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "b" {
			t.Fatalf("POST %d after killing a: %d %q, want 200 b", i, resp.StatusCode, body)
		}
	}
}

func TestNoReadyBackend(t *testing.T) {
	be := startBackend(t, named("a"))
	pool := newPoolSpecs(t, "p", "rr", []upstream.Spec{{Addr: be.addr, Weight: 1, State: upstream.StateDown}})
	_, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": pool})
	if status, _, _ := get(t, http.DefaultClient, url+"/", ""); status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", status)
	}
	if err := pool.SetState(be.addr, upstream.StateUp); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, http.DefaultClient, url+"/", ""); status != 200 {
		t.Fatalf("after bringing the backend up: status %d, want 200", status)
	}
}

func TestApplyUnderLoad(t *testing.T) {
	pools := map[string]*upstream.Pool{
		"a": newPool(t, "a", startBackend(t, named("a")).addr),
		"b": newPool(t, "b", startBackend(t, named("b")).addr),
	}
	s, url := startProxy(t, Options{}, []config.Route{{Pool: "a"}}, pools)
	listen := s.Addrs()[0].String()
	var stop atomic.Bool
	var failed, total atomic.Int64
	var seen sync.Map
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000 && !stop.Load(); i++ {
				resp, err := c.Get(url + "/")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
				seen.Store(string(body), true)
			}
		}()
	}
	for i := range 40 {
		pool := []string{"a", "b"}[i%2]
		cfg := &config.L7{Listeners: []config.Listener{{Listen: listen, Routes: []config.Route{{Pool: pool}}}}}
		if err := s.Apply(cfg, pools); err != nil {
			t.Fatal(err)
		}
		n := total.Load()
		// A bound on the test, not a speed requirement.
		eventually(t, 30*time.Second, "requests between Applies", func() bool { return total.Load() > n+5 })
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during Apply", failed.Load(), total.Load())
	}
	_, a := seen.Load("a")
	_, b := seen.Load("b")
	if !a || !b {
		t.Fatalf("routes did not alternate: saw a=%v b=%v", a, b)
	}
}

func TestApplyRemovesListener(t *testing.T) {
	pools := map[string]*upstream.Pool{"a": newPool(t, "a", startBackend(t, named("a")).addr)}
	s, _ := startProxy(t, Options{}, []config.Route{{Pool: "a"}}, pools)
	old := s.Addrs()[0].String()
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "a"}}}}}
	// "127.0.0.1:0" names the same configured address as before, so
	// replace it with an explicit one to force a new listener.
	cfg.Listeners[0].Listen = freeAddr(t)
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := get(t, http.DefaultClient, "http://"+cfg.Listeners[0].Listen+"/", ""); status != 200 || body != "a" {
		t.Fatalf("new listener: %d %q", status, body)
	}
	eventually(t, 5*time.Second, "the removed listener to stop accepting", func() bool {
		c, err := net.DialTimeout("tcp", old, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}

func freeAddr(t *testing.T) string { return testnet.FreeAddr(t) }

func TestShutdownFinishesInFlight(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "slow")
	}))
	s := NewServer(Options{Logger: quietLogger()})
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "p"}}}}}
	if err := s.Apply(cfg, map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0].String()
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, string(body), err}
	}()
	<-arrived
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	eventually(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	close(release)
	r := <-got
	if r.err != nil || r.status != 200 || r.body != "slow" {
		t.Fatalf("in-flight request: %d %q %v, want 200 slow", r.status, r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Apply(cfg, nil); err == nil {
		t.Fatal("Apply after Shutdown succeeded")
	}
}

func TestCurl(t *testing.T) {
	curl := testnet.NeedTool(t, "curl", "curl")
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", r.Host, r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	_, url := startProxy(t, Options{}, []config.Route{{Host: "curl.test", Pool: "p"}}, map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, curl, "-sS", "-H", "Host: curl.test", url+"/a/b", url+"/c").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	if want := "curl.test /a/b 127.0.0.1curl.test /c 127.0.0.1"; string(out) != want {
		t.Fatalf("curl got %q, want %q", out, want)
	}

	// curl sends Expect: 100-continue with bodies over 1 MB and waits for
	// the 100 before sending: the proxy must answer it and pass the body.
	echoBE := startBackend(t, echo())
	_, echoURL := startProxy(t, Options{}, []config.Route{{Pool: "e"}}, map[string]*upstream.Pool{"e": newPool(t, "e", echoBE.addr)})
	body := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB
	sum := sha256.Sum256([]byte(body))
	cmd := exec.CommandContext(ctx, curl, "-sS", "-D", "-", "-o", "/dev/null", "-H", "Content-Type: application/octet-stream",
		"--data-binary", "@-", echoURL+"/upload")
	cmd.Stdin = strings.NewReader(body)
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl upload: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "HTTP/1.1 100 Continue") || !strings.Contains(strings.ToLower(string(out)), hex.EncodeToString(sum[:])) {
		t.Fatalf("curl upload with Expect: 100-continue: headers %q", out)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	// The stream's gaps are a twentieth of the timeout, so only a stall of
	// the whole machine for most of a second could make it look silent
	// (with 300ms and gaps of 50ms, a loaded CI machine cut it once).
	const timeout = time.Second
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			// Silent for much less than the timeout at a time, but
			// streaming for several times the timeout in total.
			end := time.Now().Add(3 * timeout)
			for i := 0; time.Now().Before(end) && i < 200; i++ {
				fmt.Fprintf(w, "event %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(timeout / 20)
			}
		case "/stall":
			select {
			case <-time.After(10 * timeout):
			case <-r.Context().Done():
			}
		}
	}))
	_, url := startProxy(t, Options{UpstreamTimeout: timeout}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)})
	tests := []struct {
		desc, path string
		status     int
		minBody    int
	}{
		{desc: "a stream longer than the timeout is not cut", path: "/stream", status: 200, minBody: 8},
		{desc: "a silent backend times out", path: "/stall", status: http.StatusGatewayTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			status, body, _ := get(t, http.DefaultClient, url+tc.path, "")
			if status != tc.status || strings.Count(body, "\n") < tc.minBody {
				t.Fatalf("got %d with %d lines, want %d with at least %d", status, strings.Count(body, "\n"), tc.status, tc.minBody)
			}
		})
	}
}
