package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

func do(t *testing.T, method, url, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func TestHTTPAuth(t *testing.T) {
	n := startNode(t, Options{AdminToken: "adm", NamespaceTokens: map[string]string{"prod": "p-secret"}})
	u := "http://" + n.ID()
	reg := map[string]any{"namespace": "prod", "service": "web", "ip": "127.0.0.1", "port": 80}
	for _, tc := range []struct {
		desc, method, path, token string
		body                      any
		want                      int
	}{
		{"namespace without token", "PUT", "/v1/registry/instances", "", reg, 403},
		{"namespace wrong token", "PUT", "/v1/registry/instances", "nope", reg, 403},
		{"namespace token", "PUT", "/v1/registry/instances", "p-secret", reg, 200},
		{"admin token opens namespaces", "PUT", "/v1/registry/instances", "adm", reg, 200},
		{"query without token", "GET", "/v1/registry/services/prod/DEFAULT_GROUP/web", "", nil, 403},
		{"query with token", "GET", "/v1/registry/services/prod/DEFAULT_GROUP/web", "p-secret", nil, 200},
		{"anonymous register in public", "PUT", "/v1/registry/instances", "", map[string]any{"service": "web", "ip": "127.0.0.1", "port": 80}, 403},
		{"anonymous beat in public", "PUT", "/v1/registry/beat", "", map[string]any{"service": "web", "ip": "127.0.0.1", "port": 80}, 403},
		{"anonymous deregister in public", "DELETE", "/v1/registry/instances?service=web&ip=127.0.0.1&port=80", "", nil, 403},
		{"another namespace's token in public", "PUT", "/v1/registry/instances", "p-secret", map[string]any{"service": "web", "ip": "127.0.0.1", "port": 80}, 403},
		{"admin token in public", "PUT", "/v1/registry/instances", "adm", map[string]any{"service": "web", "ip": "127.0.0.1", "port": 80}, 200},
		{"anonymous read in public", "GET", "/v1/registry/services/public/DEFAULT_GROUP/web", "", nil, 200},
		{"nacos anonymous register in public", "POST", "/nacos/v1/ns/instance?serviceName=x&ip=127.0.0.2&port=80", "", nil, 403},
		{"nacos anonymous beat in public", "PUT", "/nacos/v1/ns/instance/beat?serviceName=x&ip=127.0.0.2&port=80", "", nil, 403},
		{"nacos register in public with accessToken", "POST", "/nacos/v1/ns/instance?serviceName=x&ip=127.0.0.2&port=80&accessToken=adm", "", nil, 200},
		{"nacos anonymous deregister in public", "DELETE", "/nacos/v1/ns/instance?serviceName=x&ip=127.0.0.2&port=80", "", nil, 403},
		{"nacos anonymous service create", "POST", "/nacos/v1/ns/service?serviceName=y", "", nil, 401},
		{"nacos anonymous login", "POST", "/nacos/v1/auth/login?username=nacos&password=nacos", "", nil, 403},
		{"nacos login with a namespace token", "POST", "/nacos/v1/auth/login?username=x&password=p-secret", "", nil, 200},
		{"remove peer without token", "POST", "/v1/registry/cluster/remove", "", map[string]any{"id": "127.0.0.1:1"}, 401},
		{"remove unknown peer", "POST", "/v1/registry/cluster/remove", "adm", map[string]any{"id": "127.0.0.1:1"}, 404},
		{"remove the leader", "POST", "/v1/registry/cluster/remove", "adm", map[string]any{"id": n.ID()}, 409},
		{"admin write without token", "PUT", "/v1/registry/services", "", map[string]any{"service": "web"}, 401},
		{"admin write with namespace token", "PUT", "/v1/registry/services", "p-secret", map[string]any{"service": "web"}, 401},
		{"admin write with token", "PUT", "/v1/registry/services", "adm", map[string]any{"service": "web", "protect_threshold": 0.5}, 200},
		{"nacos register without token", "POST", "/nacos/v1/ns/instance?namespaceId=prod&serviceName=x&ip=127.0.0.2&port=80", "", nil, 403},
		{"nacos register with accessToken", "POST", "/nacos/v1/ns/instance?namespaceId=prod&serviceName=x&ip=127.0.0.2&port=80&accessToken=p-secret", "", nil, 200},
		{"bad json", "PUT", "/v1/registry/instances", "adm", "not an object", 400},
		{"unknown field", "PUT", "/v1/registry/instances", "adm", map[string]any{"service": "web", "ip": "127.0.0.1", "port": 80, "zzz": 1}, 400},
		{"bad ip", "PUT", "/v1/registry/instances", "adm", map[string]any{"service": "web", "ip": "x", "port": 80}, 400},
		{"bad selector", "GET", "/v1/registry/services/public/DEFAULT_GROUP/web?selector=novalue", "", nil, 400},
		{"bad index", "GET", "/v1/registry/services/public/DEFAULT_GROUP/web?index=x", "", nil, 400},
	} {
		code, body, _ := do(t, tc.method, u+tc.path, tc.token, tc.body)
		if code != tc.want {
			t.Errorf("%s: status %d (%s), want %d", tc.desc, code, body, tc.want)
		}
	}
}

func query(t *testing.T, url string) Result {
	t.Helper()
	code, body, _ := do(t, "GET", url, "", nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	var r Result
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHTTPQueryWeightsAndGray(t *testing.T) {
	n := startNode(t, Options{})
	u := "http://" + n.ID()
	for i, v := range []string{"1", "1", "2"} {
		code, b, _ := do(t, "PUT", u+"/v1/registry/instances", "", map[string]any{"service": "api", "ip": "127.0.0." + strconv.Itoa(i+1), "port": 80, "cluster": "a", "metadata": map[string]string{"version": v}})
		if code != 200 {
			t.Fatalf("register: %d %s", code, b)
		}
	}
	code, b, _ := do(t, "PUT", u+"/v1/registry/services", "", map[string]any{"service": "api", "routes": []map[string]any{{"name": "canary", "caller_tags": map[string]string{"team": "x"}, "select": map[string]string{"version": "2"}}}})
	if code != 200 {
		t.Fatalf("put service: %d %s", code, b)
	}
	if r := query(t, u+"/v1/registry/services/public/DEFAULT_GROUP/api?tag=team=x"); r.Route != "canary" || len(r.Instances) != 1 || r.Instances[0].IP != "127.0.0.3" {
		t.Fatalf("gray query: %+v", r)
	}
	if r := query(t, u+"/v1/registry/services/public/DEFAULT_GROUP/api?selector=version=1"); len(r.Instances) != 2 {
		t.Fatalf("selector query: %+v", r)
	}
	// Weights change at run time; weight 0 takes no new traffic.
	code, b, _ = do(t, "PATCH", u+"/v1/registry/instances", "", map[string]any{"service": "api", "ip": "127.0.0.1", "port": 80, "cluster": "a", "set_weight": 0})
	if code != 200 {
		t.Fatalf("patch: %d %s", code, b)
	}
	if r := query(t, u+"/v1/registry/services/public/DEFAULT_GROUP/api?selector=version=1"); len(r.Instances) != 1 || r.Instances[0].IP != "127.0.0.2" {
		t.Fatalf("after weight 0: %+v", r)
	}
	if r := query(t, u+"/v1/registry/services/public/DEFAULT_GROUP/api?healthy=false"); len(r.Instances) != 3 || r.Instances[0].Weight != 0 {
		t.Fatalf("all instances: %+v", r)
	}
}

// TestBlockingQueryAndWatch: a blocking query returns when the service
// changes; a watch stream delivers the change well within a second.
func TestBlockingQueryAndWatch(t *testing.T) {
	n := startNode(t, Options{})
	u := "http://" + n.ID()
	do(t, "PUT", u+"/v1/registry/instances", "", map[string]any{"service": "w", "ip": "127.0.0.1", "port": 80})
	r := query(t, u+"/v1/registry/services/public/DEFAULT_GROUP/w")
	// Nothing changes: the blocking query times out with the same index.
	start := time.Now()
	r2 := query(t, u+"/v1/registry/services/public/DEFAULT_GROUP/w?index="+strconv.FormatUint(r.Index, 10)+"&wait=100ms")
	if r2.Index != r.Index || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("idle blocking query: index %d after %v", r2.Index, time.Since(start))
	}

	resp, err := http.Get(u + "/v1/registry/watch/public/DEFAULT_GROUP/w")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() Result {
		if !lines.Scan() {
			t.Fatalf("watch ended: %v", lines.Err())
		}
		var r Result
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if first := next(); len(first.Instances) != 1 {
		t.Fatalf("watch first: %+v", first)
	}
	blocked := make(chan Result, 1)
	go func() {
		var r Result
		_, b, _ := do(t, "GET", u+"/v1/registry/services/public/DEFAULT_GROUP/w?wait=10s&index="+strconv.FormatUint(r2.Index, 10), "", nil)
		json.Unmarshal(b, &r)
		blocked <- r
	}()
	// The watch is parked already; the blocking query makes two. (Were
	// the change to land before the query waits, the query would still
	// return it at once: its index is older.)
	waitFor(t, 5*time.Second, "the blocking query to park", func() bool { return n.parked.Load() == 2 })
	changed := time.Now()
	do(t, "PUT", u+"/v1/registry/instances", "", map[string]any{"service": "w", "ip": "127.0.0.2", "port": 80})
	if got := next(); len(got.Instances) != 2 {
		t.Fatalf("watch change: %+v", got)
	}
	if d := time.Since(changed); d > time.Second {
		t.Fatalf("watch delivered the change after %v", d)
	}
	select {
	case got := <-blocked:
		if len(got.Instances) != 2 || got.Index <= r2.Index {
			t.Fatalf("blocking query woke with %+v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query not woken")
	}
}

// TestBeatRevivesAndReregisters: beats reach the leader only; a beat of an
// unhealthy instance makes it healthy, a beat of a removed one registers
// it again.
func TestBeatRevivesAndReregisters(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	n := startNode(t, Options{Liveness: LivenessOptions{Now: clk.now}})
	u := "http://" + n.ID()
	inst := map[string]any{"service": "hb", "ip": "127.0.0.1", "port": 80}
	do(t, "PUT", u+"/v1/registry/instances", "", inst)
	healthy := func() (bool, bool) {
		in, ok := n.Store().Instance(Key{Service: "hb"}, "127.0.0.1#80#DEFAULT")
		return in.Healthy, ok
	}
	clk.add(16 * time.Second)
	waitFor(t, 5*time.Second, "unhealthy after 15s", func() bool { h, ok := healthy(); return ok && !h })
	if code, b, _ := do(t, "PUT", u+"/v1/registry/beat", "", inst); code != 200 {
		t.Fatalf("beat: %d %s", code, b)
	}
	if h, _ := healthy(); !h {
		t.Fatal("beat did not revive the instance")
	}
	clk.add(31 * time.Second)
	waitFor(t, 5*time.Second, "removed after 30s", func() bool { _, ok := healthy(); return !ok })
	do(t, "PUT", u+"/v1/registry/beat", "", inst)
	if h, ok := healthy(); !ok || !h {
		t.Fatal("beat did not register the removed instance again")
	}
}

// TestLateBeatAfterDeregister: a heartbeat that arrives just after its
// client deregistered (sent before, delivered after — under load the
// Nacos SDK's last beat often is) does not register the instance again,
// through strata's API and Nacos's; a registration afterwards works at
// once, and an instance that expired rather than left is still brought
// back by its beat (TestBeatRevivesAndReregisters).
func TestLateBeatAfterDeregister(t *testing.T) {
	n := startNode(t, Options{})
	u := "http://" + n.ID()
	inst := map[string]any{"service": "late", "ip": "127.0.0.1", "port": 80}
	present := func() bool {
		_, ok := n.Store().Instance(Key{Service: "late"}, "127.0.0.1#80#DEFAULT")
		return ok
	}
	if code, b, _ := do(t, "PUT", u+"/v1/registry/instances", "", inst); code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
	if code, b, _ := do(t, "DELETE", u+"/v1/registry/instances?service=late&ip=127.0.0.1&port=80", "", nil); code != 200 || present() {
		t.Fatalf("deregister: %d %s, present %v", code, b, present())
	}
	if code, b, _ := do(t, "PUT", u+"/v1/registry/beat", "", inst); code != 200 {
		t.Fatalf("late beat: %d %s", code, b)
	}
	if present() {
		t.Fatal("a beat right after the deregistration registered the instance again")
	}
	if code, b, _ := do(t, "PUT", u+"/v1/registry/instances", "", inst); code != 200 || !present() {
		t.Fatalf("register again: %d %s, present %v", code, b, present())
	}

	// The same through the Nacos API, as the official SDK sends it.
	const q = "serviceName=late&ip=127.0.0.1&port=80&ephemeral=true"
	if code, b, _ := do(t, "DELETE", u+"/nacos/v1/ns/instance?"+q, "", nil); code != 200 || present() {
		t.Fatalf("nacos deregister: %d %s, present %v", code, b, present())
	}
	beat := url.QueryEscape(`{"ip":"127.0.0.1","port":80,"serviceName":"DEFAULT_GROUP@@late","cluster":"DEFAULT","weight":1}`)
	if code, b, _ := do(t, "PUT", u+"/nacos/v1/ns/instance/beat?serviceName=DEFAULT_GROUP@@late&beat="+beat, "", nil); code != 200 {
		t.Fatalf("nacos late beat: %d %s", code, b)
	}
	if present() {
		t.Fatal("a Nacos beat right after the deregistration registered the instance again")
	}
}

// TestRestartFromSnapshot: a node restarted on its data dir restores the
// snapshot and replays the log after it.
func TestRestartFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	// The restarted node binds the same address again, so it comes from
	// below the ephemeral range, where no other socket is handed it while
	// it is free.
	addr := testnet.FreeAddr(t)
	n := clusterNode(t, addr, "127.0.0.1:0", filepath.Join(dir, "n"), nil)
	waitFor(t, 5*time.Second, "leader", n.IsLeader)
	u := "http://" + addr
	do(t, "PUT", u+"/v1/registry/instances", "", map[string]any{"service": "s", "ip": "127.0.0.1", "port": 80, "ephemeral": false})
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	do(t, "PUT", u+"/v1/registry/instances", "", map[string]any{"service": "s", "ip": "127.0.0.2", "port": 80, "ephemeral": false})
	idx := n.Store().Index()
	n.Kill()
	n = clusterNode(t, addr, "127.0.0.1:0", filepath.Join(dir, "n"), nil)
	defer n.Kill()
	waitFor(t, 5*time.Second, "restored state", func() bool {
		v, _ := n.Store().Get(Key{Service: "s"})
		return len(v.Instances) == 2 && n.Store().Index() == idx
	})
}

// TestHTTPGrayPercentPerCaller: answers to percentage routes depend on
// the caller, so the shared answer cache must not hand one caller's
// answer to another.
func TestHTTPGrayPercentPerCaller(t *testing.T) {
	n := startNode(t, Options{})
	u := "http://" + n.ID()
	do(t, "PUT", u+"/v1/registry/instances", "", map[string]any{"service": "g", "ip": "127.0.0.1", "port": 80, "metadata": map[string]string{"version": "1"}})
	do(t, "PUT", u+"/v1/registry/instances", "", map[string]any{"service": "g", "ip": "127.0.0.2", "port": 80, "metadata": map[string]string{"version": "2"}})
	do(t, "PUT", u+"/v1/registry/services", "", map[string]any{"service": "g", "routes": []map[string]any{{"name": "half", "percent": 50, "select": map[string]string{"version": "2"}}}})
	v, _ := n.Store().Get(Key{Service: "g"})
	sides := map[bool]int{}
	for i := 0; i < 40; i++ {
		caller := "c" + strconv.Itoa(i)
		want := Select(v, true, &Query{Key: v.Service.Key, HealthyOnly: true, Caller: caller})
		got := query(t, u+"/v1/registry/services/public/DEFAULT_GROUP/g?caller="+caller)
		if got.Route != want.Route || len(got.Instances) != len(want.Instances) {
			t.Fatalf("caller %s: got route %q %d instances, want %q %d", caller, got.Route, len(got.Instances), want.Route, len(want.Instances))
		}
		sides[got.Route == "half"]++
	}
	if sides[true] == 0 || sides[false] == 0 {
		t.Fatalf("a 50%% split put every caller on one side: %v", sides)
	}
}

// TestParkedBound: blocking queries beyond MaxParked are refused with 429
// instead of piling up.
func TestParkedBound(t *testing.T) {
	n := startNode(t, Options{MaxParked: 1})
	do(t, "PUT", "http://"+n.ID()+"/v1/registry/instances", "", map[string]any{"service": "p", "ip": "127.0.0.1", "port": 80})
	u := "http://" + n.ID() + "/v1/registry/services/public/DEFAULT_GROUP/p?wait=1s&index=" + strconv.FormatUint(n.Store().Index(), 10)
	first := make(chan int, 1)
	go func() { code, _, _ := do(t, "GET", u, "", nil); first <- code }()
	waitFor(t, 5*time.Second, "the first query to park", func() bool { return n.parked.Load() == 1 })
	if code, _, h := do(t, "GET", u, "", nil); code != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("second parked query: %d", code)
	}
	if code := <-first; code != 200 {
		t.Fatalf("first parked query: %d", code)
	}
	if n.parked.Load() != 0 {
		t.Fatalf("%d still counted as parked", n.parked.Load())
	}
}

// TestCloseReleasesParkedQueries: shutting a node down does not wait out
// the waits of parked blocking queries and watches.
func TestCloseReleasesParkedQueries(t *testing.T) {
	n := startNode(t, Options{})
	do(t, "PUT", "http://"+n.ID()+"/v1/registry/instances", "", map[string]any{"service": "c", "ip": "127.0.0.1", "port": 80})
	u := "http://" + n.ID() + "/v1/registry/services/public/DEFAULT_GROUP/c?wait=1m&index=" + strconv.FormatUint(n.Store().Index(), 10)
	// Each client reads its answer to the end and closes it, so neither
	// the clients nor their connections outlive the test.
	get := func(u string) {
		if resp, err := http.Get(u); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	go get(u)
	go get("http://" + n.ID() + "/v1/registry/watch/public/DEFAULT_GROUP/c")
	waitFor(t, 5*time.Second, "both to park", func() bool { return n.parked.Load() == 2 })
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("close took %v with parked queries", d)
	}
}
