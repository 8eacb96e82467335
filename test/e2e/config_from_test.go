package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunConfigFrom: an l7 node takes its config from the registry's
// config service and follows it: a new version reroutes its traffic, a
// bad version is refused (named by the source, line and field) while the
// old one keeps serving, and the next good one is applied. The cache
// holds the last applied version.
func TestRunConfigFrom(t *testing.T) {
	regAddr := freePort(t)
	startRegistry(t, regAddr, freePort(t), t.TempDir())
	publish := func(content string) {
		t.Helper()
		form := url.Values{"dataId": {"edge.yaml"}, "group": {"STRATA"}, "content": {content}, "type": {"yaml"}}
		resp, err := http.PostForm("http://"+regAddr+"/nacos/v1/cs/configs", form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "true" {
			t.Fatalf("publishing: %s %s", resp.Status, b)
		}
	}
	named := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		t.Cleanup(s.Close)
		return strings.TrimPrefix(s.URL, "http://")
	}
	one, two := named("one"), named("two")
	listen := freePort(t)
	conf := func(backend string) string {
		return fmt.Sprintf("pools:\n  - name: app\n    backends:\n      - address: %s\nl7:\n  listeners:\n    - listen: %s\n      routes:\n        - pool: app\n", backend, listen)
	}
	publish(conf(one))
	cache := filepath.Join(t.TempDir(), "edge.yaml")
	p := startStrataArgs(t, "run", "--config-from", "registry://"+regAddr+"/public/STRATA/edge.yaml", "--config-cache", cache)
	body := func() string {
		resp, err := http.Get("http://" + listen + "/")
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	served := func(name string) func() bool {
		return func() bool { return strings.HasPrefix(body(), name) }
	}
	eventually(t, 5*time.Second, "the first version to serve", served("one"))

	publish(conf(two))
	p.waitLog(t, "config reloaded", 10*time.Second)
	eventually(t, 5*time.Second, "the second version to serve", served("two"))

	// A version with a bad field: refused, named, and the old one serves.
	publish(conf(two) + "      bogus_field: 1\n")
	line := p.waitLog(t, "reload refused", 10*time.Second)
	if !strings.Contains(line, "registry://"+regAddr+"/public/STRATA/edge.yaml:") || !strings.Contains(line, "bogus_field") {
		t.Errorf("the refusal does not name the source, line and field: %s", line)
	}
	if got := body(); !strings.HasPrefix(got, "two") {
		t.Fatalf("after a bad version: %q", got)
	}

	publish(conf(one))
	p.waitLog(t, "config reloaded", 10*time.Second)
	eventually(t, 5*time.Second, "the good version after the bad one to serve", served("one"))
	eventually(t, 5*time.Second, "the cache to hold the applied version", func() bool {
		b, err := os.ReadFile(cache)
		return err == nil && string(b) == conf(one)
	})
}
