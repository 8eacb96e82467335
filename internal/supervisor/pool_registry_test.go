package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/registry"
)

// startRegistry starts a one-node registry on loopback that stops with
// the test, and returns its address once it serves.
func startRegistry(t *testing.T, log *slog.Logger) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	node, err := registry.Start(ln, registry.Options{RaftAddr: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close(context.Background()) })
	eventually(t, 5*time.Second, "registry leader", node.Serving)
	return node.ID()
}

// sendInstance registers (PUT) or deregisters (DELETE) the instance addr
// of service, in cluster a, at the registry reg; a registration carries
// the fields of extra besides. It returns an error rather than failing the
// test, so that many goroutines can call it at once.
func sendInstance(c *http.Client, method, reg, service, addr string, extra map[string]any) error {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	u := "http://" + reg + "/v1/registry/instances"
	var body []byte
	if method == http.MethodDelete {
		u += "?service=" + service + "&cluster=a&ip=" + host + "&port=" + port
	} else {
		inst := map[string]any{"service": service, "ip": host, "port": p, "cluster": "a"}
		maps.Copy(inst, extra)
		body, _ = json.Marshal(inst)
	}
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, addr, res.Status)
	}
	return nil
}

// putInstance registers one instance of service at the registry reg.
func putInstance(t *testing.T, reg, service, addr string, md map[string]string) {
	t.Helper()
	if err := sendInstance(http.DefaultClient, http.MethodPut, reg, service, addr, map[string]any{"metadata": md}); err != nil {
		t.Fatal(err)
	}
}

func registryConfig(pool string) string {
	return fmt.Sprintf(`admin:
  listen: off
pools:
  - name: app
%s
l7:
  listeners:
    - name: web
      listen: 127.0.0.1:0
      routes:
        - pool: app
`, pool)
}

// TestRegistryPoolThroughReloads runs an l7 listener whose pool follows a
// real registry: registrations reach the pool without a reload; a reload
// that leaves the registry section alone keeps the pool, its provider and
// its backends (no empty moment); a changed selector, a switch to static
// backends and back each take effect.
func TestRegistryPoolThroughReloads(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := startRegistry(t, log)

	a, b := backend(t, "A"), backend(t, "B")
	putInstance(t, reg, "web", a, map[string]string{"version": "1"})

	follow := fmt.Sprintf("    registry:\n      servers: [%s]\n      service: web\n      allow: [127.0.0.0/8]", reg)
	path := filepath.Join(t.TempDir(), "strata.yaml")
	writeConfig(t, path, registryConfig(follow))
	sup := New(Options{Source: Source{Path: path}, Logger: log})
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer sup.Shutdown(context.Background())
	url := "http://" + sup.L7().Addrs()[0].String() + "/"
	// Start waited for the registry's first answer, so the first request
	// already has a backend.
	if got, err := get(t, url); err != nil || got != "A" {
		t.Fatalf("first request: %q, %v; want A", got, err)
	}

	putInstance(t, reg, "web", b, map[string]string{"version": "2"})
	pool := sup.Pools()[0]
	eventually(t, time.Second, "the new registration in the pool", func() bool { return len(pool.Snapshot().All) == 2 })
	seen := map[string]bool{}
	for range 4 {
		got, err := get(t, url)
		if err != nil {
			t.Fatal(err)
		}
		seen[got] = true
	}
	if !seen["A"] || !seen["B"] {
		t.Fatalf("answers from %v, want A and B", seen)
	}

	// An unrelated change: the same pool, the same provider, both backends
	// at every moment.
	provider := sup.gen.Load().pools["app"].provider
	writeConfig(t, path, strings.Replace(registryConfig(follow), "l7:", "  - name: spare\n    backends: [{address: "+a+"}]\nl7:", 1))
	if err := sup.Reload(); err != nil {
		t.Fatal(err)
	}
	pr := sup.gen.Load().pools["app"]
	if pr.pool != pool || pr.provider != provider {
		t.Fatal("a reload that left the registry section alone replaced the pool or its provider")
	}
	if n := len(pool.Snapshot().All); n != 2 {
		t.Fatalf("right after the reload the pool has %d backends, want 2", n)
	}

	// A selector: only version 2 stays.
	writeConfig(t, path, registryConfig(follow+"\n      selector: {version: \"2\"}"))
	if err := sup.Reload(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the selector to apply", func() bool {
		return slices.Equal(backendNames(sup), []string{b})
	})

	// Static backends, then the registry again.
	writeConfig(t, path, registryConfig("    backends: [{address: "+a+"}]"))
	if err := sup.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := backendNames(sup); !slices.Equal(got, []string{a}) {
		t.Fatalf("after the switch to static backends: %v, want [%s]", got, a)
	}
	if sup.gen.Load().pools["app"].provider != nil {
		t.Fatal("a static pool kept its registry provider")
	}
	writeConfig(t, path, registryConfig(follow))
	if err := sup.Reload(); err != nil {
		t.Fatal(err)
	}
	want := []string{a, b}
	slices.Sort(want)
	eventually(t, time.Second, "the registry's instances again", func() bool { return slices.Equal(backendNames(sup), want) })
}

func backendNames(sup *Supervisor) []string {
	var out []string
	for _, b := range sup.Pools()[0].Snapshot().All {
		out = append(out, b.Name)
	}
	return out
}
