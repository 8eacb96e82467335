package registry

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/clients"
	"github.com/nacos-group/nacos-sdk-go/common/constant"
	"github.com/nacos-group/nacos-sdk-go/vo"

	"github.com/strata-lb/strata/internal/testnet"
)

// form posts or sends values to a Nacos endpoint with extra headers.
func nacosDo(t *testing.T, method, u string, v url.Values, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(v.Encode())
	} else if len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, _ := http.NewRequest(method, u, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, x := range hdr {
		req.Header.Set(k, x)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestConfigNacosSDK drives the config service with the official Nacos Go
// SDK v1.0.8, unchanged, in a namespace that needs a token (the SDK logs
// in with it as its password): publish, get, listen with a change
// notification, search, remove.
func TestConfigNacosSDK(t *testing.T) {
	// The SDK's loops, which cannot be stopped, write its cache dir while
	// the node serves; the dir is removed after the node stops (cleanups
	// run last-registered first), not by t.TempDir before that.
	dir, err := os.MkdirTemp("", "strata-nacos-config")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := startNode(t, Options{AdminToken: "adm", NamespaceTokens: map[string]string{"prod": "p-secret"}})
	host, port, _ := net.SplitHostPort(n.ID())
	p, _ := strconv.Atoi(port)
	cc, err := clients.NewConfigClient(vo.NacosClientParam{
		ClientConfig: &constant.ClientConfig{
			NamespaceId: "prod", TimeoutMs: 5000, NotLoadCacheAtStart: true,
			CacheDir: dir + "/cache", LogDir: dir + "/log", LogLevel: "error",
			Username: "app", Password: "p-secret",
		},
		ServerConfigs: []constant.ServerConfig{{IpAddr: host, Port: uint64(p)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := cc.PublishConfig(vo.ConfigParam{DataId: "orders.yaml", Group: "DEFAULT_GROUP", Content: "pool: 10\n"})
	if err != nil || !ok {
		t.Fatalf("publish: %v %v", ok, err)
	}
	if it, ok := n.ConfigGet("prod", "", "orders.yaml", "", ""); !ok || it.Content != "pool: 10\n" {
		t.Fatalf("store after the SDK's publish: %+v", it)
	}
	got, err := cc.GetConfig(vo.ConfigParam{DataId: "orders.yaml", Group: "DEFAULT_GROUP"})
	if err != nil || got != "pool: 10\n" {
		t.Fatalf("get: %q %v", got, err)
	}

	changes := make(chan string, 16)
	err = cc.ListenConfig(vo.ConfigParam{DataId: "orders.yaml", Group: "DEFAULT_GROUP", OnChange: func(ns, group, dataID, data string) {
		changes <- data
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The SDK's first poll returns at once; the next one parks. Wait for
	// it to park so that the publish below is a change it waits for.
	waitFor(t, 10*time.Second, "the SDK's long poll to park", func() bool { return n.parked.Load() == 1 })
	start := time.Now()
	if _, err := n.ConfigPublish(ConfigWrite{Key: ConfigKey{Namespace: "prod", DataID: "orders.yaml"}, Content: "pool: 20\n"}); err != nil {
		t.Fatal(err)
	}
	select {
	case data := <-changes:
		if data != "pool: 20\n" {
			t.Fatalf("listener got %q", data)
		}
		t.Logf("SDK listener called %v after the publish", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the SDK's listener was not called")
	}

	page, err := cc.SearchConfig(vo.SearchConfigParam{Search: "accurate", DataId: "orders.yaml", PageNo: 1, PageSize: 10})
	if err != nil || page.TotalCount != 1 || len(page.PageItems) != 1 || page.PageItems[0].Content != "pool: 20\n" {
		t.Fatalf("search: %+v %v", page, err)
	}
	// (No CancelListenConfig: in v1.0.8 it races with the SDK's own
	// scheduler, which the race detector reports.)

	ok, err = cc.DeleteConfig(vo.ConfigParam{DataId: "orders.yaml", Group: "DEFAULT_GROUP"})
	if err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, ok := n.ConfigGet("prod", "", "orders.yaml", "", ""); ok {
		t.Fatal("config still there after the SDK's delete")
	}
	// A config that is not there is "" without an error, as from Nacos.
	got, err = cc.GetConfig(vo.ConfigParam{DataId: "orders.yaml", Group: "DEFAULT_GROUP"})
	if err != nil || got != "" {
		t.Fatalf("get after delete: %q %v", got, err)
	}

	// An SDK without the namespace's token publishes nothing.
	bad, err := clients.NewConfigClient(vo.NacosClientParam{
		ClientConfig: &constant.ClientConfig{NamespaceId: "prod", TimeoutMs: 2000, NotLoadCacheAtStart: true,
			CacheDir: dir + "/cache2", LogDir: dir + "/log2", LogLevel: "error"},
		ServerConfigs: []constant.ServerConfig{{IpAddr: host, Port: uint64(p)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := bad.PublishConfig(vo.ConfigParam{DataId: "x", Group: "DEFAULT_GROUP", Content: "y"}); err == nil || ok {
		t.Fatalf("publish without a token: %v %v", ok, err)
	}
}

// TestConfigHTTP drives the Nacos v1 config endpoints and strata's own
// with plain HTTP: status codes, headers, CAS, beta by IP, the long-poll
// listener, history and rollback, bounds and auth.
func TestConfigHTTP(t *testing.T) {
	n := startNode(t, Options{NamespaceTokens: map[string]string{"prod": "p-secret"}, Config: ConfigOptions{MaxContentBytes: 64, History: 3}})
	u := "http://" + n.ID()
	cs := u + "/nacos/v1/cs/configs"
	key := url.Values{"dataId": {"app.properties"}, "group": {"g1"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, x := range key {
			v[k] = x
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	if code, body, _ := nacosDo(t, "GET", cs, key, nil); code != 404 || body != "config data not exist" {
		t.Fatalf("get of nothing: %d %q", code, body)
	}
	if code, body, _ := nacosDo(t, "POST", cs, with("content", "a=1", "type", "properties"), nil); code != 200 || body != "true" {
		t.Fatalf("publish: %d %q", code, body)
	}
	code, body, h := nacosDo(t, "GET", cs, key, nil)
	if code != 200 || body != "a=1" || h.Get("Content-MD5") != ContentMD5("a=1") || h.Get("Config-Type") != "properties" {
		t.Fatalf("get: %d %q %v", code, body, h)
	}
	for _, tc := range []struct {
		desc string
		v    url.Values
		hdr  map[string]string
		want int
	}{
		{"stale casMd5 in the form", with("content", "a=2", "casMd5", ContentMD5("old")), nil, 409},
		{"stale casMd5 in a header", with("content", "a=2"), map[string]string{"casMd5": "0"}, 409},
		{"empty content", with("content", ""), nil, 400},
		{"oversized content", with("content", strings.Repeat("x", 65)), nil, 400},
		{"a body past 1 MiB", with("content", strings.Repeat("é", 300<<10)), nil, 413},
		{"no dataId", url.Values{"content": {"x"}}, nil, 400},
		{"a namespace with a token, without it", with("content", "x", "tenant", "prod"), nil, 403},
		{"a namespace with a token, with it", with("content", "x", "tenant", "prod", "accessToken", "p-secret"), nil, 200},
		{"current casMd5", with("content", "a=2", "casMd5", ContentMD5("a=1")), nil, 200},
	} {
		if code, body, _ := nacosDo(t, "POST", cs, tc.v, tc.hdr); code != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.desc, code, body, tc.want)
		}
	}
	if code, _, _ := nacosDo(t, "GET", cs, url.Values{"dataId": {"app.properties"}, "group": {"g1"}, "tenant": {"prod"}}, nil); code != 403 {
		t.Errorf("read in a namespace with a token, without it: %d", code)
	}

	// Beta: served to the listed IPs only. The test's requests come from
	// loopback, whose X-Forwarded-For clientIP trusts.
	if code, body, _ := nacosDo(t, "POST", cs, with("content", "a=beta"), map[string]string{"betaIps": "10.0.0.7,10.0.0.8"}); code != 200 {
		t.Fatalf("beta publish: %d %q", code, body)
	}
	if _, body, h := nacosDo(t, "GET", cs, key, map[string]string{"X-Forwarded-For": "10.0.0.8"}); body != "a=beta" || h.Get("isBeta") != "true" {
		t.Fatalf("beta IP got %q %v", body, h)
	}
	if _, body, _ := nacosDo(t, "GET", cs, key, map[string]string{"X-Forwarded-For": "10.0.0.9"}); body != "a=2" {
		t.Fatalf("other IP got %q", body)
	}

	// The listener answers at once when the client's md5 is not current,
	// with the key url-encoded as Nacos does.
	listen := u + "/nacos/v1/cs/configs/listener"
	probe := func(md5 string) url.Values {
		return url.Values{"Listening-Configs": {"app.properties\x02g1\x02" + md5 + "\x01"}}
	}
	want := url.QueryEscape("app.properties\x02g1\x01")
	if code, body, _ := nacosDo(t, "POST", listen, probe("stale"), map[string]string{"Long-Pulling-Timeout": "30000"}); code != 200 || body != want {
		t.Fatalf("listen with a stale md5: %d %q, want %q", code, body, want)
	}
	if code, body, _ := nacosDo(t, "POST", listen, url.Values{"Listening-Configs": {"garbage"}}, nil); code != 400 {
		t.Fatalf("bad probe: %d %q", code, body)
	}
	// Up to date: it waits, and a timeout answers empty.
	cur := ContentMD5("a=2")
	start := time.Now()
	if code, body, _ := nacosDo(t, "POST", listen, probe(cur), map[string]string{"Long-Pulling-Timeout": "1000"}); code != 200 || body != "" {
		t.Fatalf("listen timeout: %d %q", code, body)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("listen with a current md5 answered after %v, before its timeout", d)
	}
	// A publish wakes a parked listener.
	type result struct {
		body string
		d    time.Duration
	}
	done := make(chan result, 1)
	go func() {
		s := time.Now()
		_, body, _ := nacosDo(t, "POST", listen, probe(cur), map[string]string{"Long-Pulling-Timeout": "30000"})
		done <- result{body, time.Since(s)}
	}()
	waitFor(t, 5*time.Second, "the listener to park", func() bool { return n.parked.Load() == 1 })
	nacosDo(t, "POST", cs, with("content", "a=3"), nil)
	select {
	case r := <-done:
		if r.body != want {
			t.Fatalf("woken listener answered %q", r.body)
		}
		t.Logf("parked listener answered %v after it was sent", r.d.Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the publish did not wake the listener")
	}

	// History, newest first, bounded at 3; Nacos's page and strata's.
	code, body, _ = nacosDo(t, "GET", u+"/nacos/v1/cs/history", with("search", "accurate"), nil)
	if code != 200 || !strings.Contains(body, `"totalCount":3`) || !strings.Contains(body, `"content":"a=3"`) {
		t.Fatalf("nacos history: %d %s", code, body)
	}
	var hist struct{ Versions []ConfigVersion }
	code, raw, _ := do(t, "GET", u+"/v1/registry/configs/public/g1/app.properties/history", "", nil)
	if code != 200 || jsonInto(raw, &hist) != nil || len(hist.Versions) != 3 || hist.Versions[0].Content != "a=3" || hist.Versions[2].Content != "a=1" {
		t.Fatalf("history: %d %s", code, raw)
	}
	code, raw, _ = do(t, "POST", u+"/v1/registry/configs/public/g1/app.properties/rollback?version="+strconv.FormatUint(hist.Versions[2].Version, 10), "", nil)
	if code != 200 || !strings.Contains(string(raw), `"content":"a=1"`) {
		t.Fatalf("rollback: %d %s", code, raw)
	}
	if _, body, _ := nacosDo(t, "GET", cs, key, nil); body != "a=1" {
		t.Fatalf("after rollback: %q", body)
	}
	if code, raw, _ := do(t, "POST", u+"/v1/registry/configs/public/g1/app.properties/rollback?version=1", "", nil); code != 404 {
		t.Fatalf("rollback to a version not kept: %d %s", code, raw)
	}

	// strata's own API: the body is the content.
	req, _ := http.NewRequest("PUT", u+"/v1/registry/configs/public/g2/raw.yaml?type=yaml", strings.NewReader("k: v\n"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("put: %v %v", resp, err)
	}
	resp.Body.Close()
	code, raw, _ = do(t, "GET", u+"/v1/registry/configs/public/g2/raw.yaml", "", nil)
	if code != 200 || !strings.Contains(string(raw), `"content":"k: v\n"`) || !strings.Contains(string(raw), `"type":"yaml"`) {
		t.Fatalf("get: %d %s", code, raw)
	}
	if code, raw, _ := do(t, "GET", u+"/v1/registry/configs?namespace=public", "", nil); code != 200 || !strings.Contains(string(raw), `"data_id":"raw.yaml"`) {
		t.Fatalf("list: %d %s", code, raw)
	}

	// Removal, Nacos's way.
	if code, body, _ := nacosDo(t, "DELETE", cs, key, nil); code != 200 || body != "true" {
		t.Fatalf("delete: %d %q", code, body)
	}
	if code, _, _ := nacosDo(t, "GET", cs, key, nil); code != 404 {
		t.Fatalf("get after delete: %d", code)
	}
}

// TestConfigListenerReleasedOnClose: a node that stops answers its parked
// listeners at once instead of holding its shutdown for their timeout.
func TestConfigListenerReleasedOnClose(t *testing.T) {
	n := startNode(t, Options{})
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+n.ID()+"/nacos/v1/cs/configs/listener",
			strings.NewReader(url.Values{"Listening-Configs": {"a\x02DEFAULT_GROUP\x02\x01"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Long-Pulling-Timeout", "60000")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waitFor(t, 5*time.Second, "the listener to park", func() bool { return n.parked.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	n.Close(ctx)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("close took %v with a parked listener", d)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the listener was not answered")
	}
}

// TestConfigCurl runs the docs' curl examples: publish with a form, read
// the content back, and a long poll woken by a publish.
func TestConfigCurl(t *testing.T) {
	testnet.NeedTool(t, "curl", "curl")
	n := startNode(t, Options{})
	u := "http://" + n.ID()
	curl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "20"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return string(out)
	}
	if out := curl("-X", "POST", u+"/nacos/v1/cs/configs", "-d", "dataId=app.yaml", "-d", "group=DEFAULT_GROUP", "--data-urlencode", "content=pool: 10"); out != "true" {
		t.Fatalf("publish: %q", out)
	}
	if out := curl(u + "/nacos/v1/cs/configs?dataId=app.yaml&group=DEFAULT_GROUP"); out != "pool: 10" {
		t.Fatalf("get: %q", out)
	}
	md5 := ContentMD5("pool: 10")
	done := make(chan string, 1)
	go func() {
		out, _ := exec.Command("curl", "-sS", "--max-time", "20", "-X", "POST", u+"/nacos/v1/cs/configs/listener",
			"-H", "Long-Pulling-Timeout: 30000", "--data-urlencode", "Listening-Configs=app.yaml\x02DEFAULT_GROUP\x02"+md5+"\x01").Output()
		done <- string(out)
	}()
	waitFor(t, 10*time.Second, "curl's long poll to park", func() bool { return n.parked.Load() == 1 })
	curl("-X", "POST", u+"/nacos/v1/cs/configs", "-d", "dataId=app.yaml", "-d", "group=DEFAULT_GROUP", "--data-urlencode", "content=pool: 20")
	select {
	case out := <-done:
		if want := url.QueryEscape("app.yaml\x02DEFAULT_GROUP\x01"); out != want {
			t.Fatalf("long poll answered %q, want %q", out, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("curl's long poll was not woken")
	}
}

func jsonInto(b []byte, v any) error { return json.Unmarshal(b, v) }
