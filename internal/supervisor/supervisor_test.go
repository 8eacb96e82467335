package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// backend is a real HTTP server that names itself in every answer.
func backend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	// Write a new file and rename it over the old, as config managers do,
	// so a reader never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func configFor(addr string) string {
	return fmt.Sprintf(`admin:
  listen: 127.0.0.1:0
pools:
  - name: app
    backends:
      - address: %s
l7:
  listeners:
    - name: web
      listen: 127.0.0.1:0
      routes:
        - pool: app
`, addr)
}

func get(t *testing.T, url string) (string, error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReloadKeepsServingOnBadConfig(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	path := filepath.Join(t.TempDir(), "strata.yaml")
	writeConfig(t, path, configFor(a))

	sup := New(Options{Source: Source{Path: path}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer sup.Shutdown(context.Background())
	url := "http://" + sup.L7().Addrs()[0].String() + "/"

	if got, err := get(t, url); err != nil || got != "A" {
		t.Fatalf("before reload: got %q, %v; want A", got, err)
	}

	writeConfig(t, path, strings.Replace(configFor(b), "address:", "adress:", 1))
	err := sup.Reload()
	if err == nil || !strings.Contains(err.Error(), "strata.yaml:6") || !strings.Contains(err.Error(), "adress") {
		t.Fatalf("reload of a misspelt file: err = %v, want file:line and the field", err)
	}
	if got, err := get(t, url); err != nil || got != "A" {
		t.Fatalf("after a bad reload: got %q, %v; want the old config (A) still serving", got, err)
	}

	writeConfig(t, path, configFor(b))
	if err := sup.Reload(); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if got, err := get(t, url); err != nil || got != "B" {
		t.Fatalf("after a good reload: got %q, %v; want B", got, err)
	}
}

func TestReloadKeepsPoolState(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	path := filepath.Join(t.TempDir(), "strata.yaml")
	writeConfig(t, path, configFor(a))
	sup := New(Options{Source: Source{Path: path}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer sup.Shutdown(context.Background())
	before := sup.Pools()[0]
	before.Snapshot().Lookup(a).Requests.Add(7)

	// Add a backend: the pool is the same object, and A keeps its counters.
	writeConfig(t, path, strings.Replace(configFor(a), "      - address: "+a, "      - address: "+a+"\n      - address: "+b, 1))
	if err := sup.Reload(); err != nil {
		t.Fatal(err)
	}
	after := sup.Pools()[0]
	if after != before {
		t.Fatal("reload that only changed backends built a new pool")
	}
	snap := after.Snapshot()
	if len(snap.All) != 2 || snap.Lookup(a).Requests.Load() != 7 {
		t.Fatalf("after reload: %d backends, A requests %d; want 2 and 7", len(snap.All), snap.Lookup(a).Requests.Load())
	}
}

func TestWatchReloadsOnSave(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	path := filepath.Join(t.TempDir(), "strata.yaml")
	writeConfig(t, path, configFor(a))
	sup := New(Options{Source: Source{Path: path}, Watch: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer sup.Shutdown(context.Background())
	url := "http://" + sup.L7().Addrs()[0].String() + "/"

	writeConfig(t, path, configFor(b))
	eventually(t, 5*time.Second, "the saved file to be served", func() bool {
		got, err := get(t, url)
		return err == nil && got == "B"
	})
}

func TestShutdownStopsListening(t *testing.T) {
	a := backend(t, "A")
	path := filepath.Join(t.TempDir(), "strata.yaml")
	writeConfig(t, path, configFor(a))
	sup := New(Options{Source: Source{Path: path}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + sup.L7().Addrs()[0].String() + "/"
	adminURL := "http://" + sup.Admin().Addr().String() + "/healthz"
	if _, err := get(t, adminURL); err != nil {
		t.Fatalf("admin healthz: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sup.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	if _, err := get(t, url); err == nil {
		t.Fatal("l7 still answers after shutdown")
	}
	if _, err := get(t, adminURL); err == nil {
		t.Fatal("admin still answers after shutdown")
	}
}

func TestShutdownLameduck(t *testing.T) {
	a := backend(t, "A")
	path := filepath.Join(t.TempDir(), "strata.yaml")
	conf := strings.Replace(configFor(a), "      listen: 127.0.0.1:0\n", "      listen: 127.0.0.1:0\n      health_path: /strata/healthz\n", 1)
	writeConfig(t, path, "shutdown_delay: 1s\n"+conf)
	sup := New(Options{Source: Source{Path: path}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + sup.L7().Addrs()[0].String()
	status := func(p string) int {
		resp, err := http.Get(base + p)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("/strata/healthz"); got != 200 {
		t.Fatalf("health path while serving: %d, want 200", got)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- sup.Shutdown(context.Background()) }()
	eventually(t, 2*time.Second, "the health path to fail in lameduck", func() bool { return status("/strata/healthz") == 503 })
	// Lameduck still serves traffic: only the health path fails.
	if got, err := get(t, base+"/"); err != nil || got != "A" {
		t.Fatalf("request during lameduck: %q, %v; want A", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("shutdown took %v; the 1s lameduck was skipped", d)
	}
}
