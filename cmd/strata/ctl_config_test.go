package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/registry"
)

// TestCtlConfig runs `strata ctl config` against a registry node: put
// from a file, get, a refused stale --cas-md5, history, rollback, ls, rm,
// and a namespace whose token it must carry.
func TestCtlConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := registry.Start(ln, registry.Options{RaftAddr: "127.0.0.1:0", NamespaceTokens: map[string]string{"prod": "p-secret"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	waitFor(t, "the node to lead", n.IsLeader)
	dir := t.TempDir()
	ctl := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args = append(append([]string{"config"}, args...), "--server", n.ID())
		if code := cmdCtl(args, &out, &errb); code != want {
			t.Fatalf("ctl %v: exit %d, want %d; stderr %s", args, code, want, errb.String())
		}
		return out.String() + errb.String()
	}
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	if out := ctl(0, "put", "app.yaml", "--group", "web", "--type", "yaml", "--file", file("v1", "pool: 10\n")); !strings.Contains(out, "published public/web/app.yaml md5 "+registry.ContentMD5("pool: 10\n")) {
		t.Fatalf("put: %q", out)
	}
	ctl(0, "put", "app.yaml", "--group", "web", "--file", file("v2", "pool: 20\n"))
	if out := ctl(0, "get", "app.yaml", "--group", "web"); out != "pool: 20\n" {
		t.Fatalf("get: %q", out)
	}
	if out := ctl(1, "put", "app.yaml", "--group", "web", "--cas-md5", registry.ContentMD5("pool: 10\n"), "--file", file("v3", "pool: 30\n")); !strings.Contains(out, "409") {
		t.Fatalf("stale cas: %q", out)
	}
	h := n.ConfigHistory("", "web", "app.yaml")
	out := ctl(0, "history", "app.yaml", "--group", "web")
	if len(h) != 2 || !strings.Contains(out, registry.ContentMD5("pool: 10\n")) || strings.Count(out, "\n") != 3 {
		t.Fatalf("history: %q (store %+v)", out, h)
	}
	ctl(0, "rollback", "app.yaml", "--group", "web", "--version", strconv.FormatUint(h[1].Version, 10))
	if out := ctl(0, "get", "app.yaml", "--group", "web"); out != "pool: 10\n" {
		t.Fatalf("get after rollback: %q", out)
	}
	if out := ctl(0, "ls"); out != "web/app.yaml\n" {
		t.Fatalf("ls: %q", out)
	}
	ctl(0, "rm", "app.yaml", "--group", "web")
	if out := ctl(1, "get", "app.yaml", "--group", "web"); !strings.Contains(out, "404") {
		t.Fatalf("get after rm: %q", out)
	}
	// A namespace with a token: refused without it, taken with it.
	ctl(1, "put", "db", "--namespace", "prod", "--file", file("db", "x"))
	tok := file("tok", "p-secret\n")
	os.Chmod(tok, 0o600)
	ctl(0, "put", "db", "--namespace", "prod", "--file", file("db", "x"), "--token-file", tok)
	if out := ctl(0, "get", "db", "--namespace", "prod", "--token-file", tok); out != "x" {
		t.Fatalf("get in prod: %q", out)
	}
	ctl(2, "bogus", "x")
	ctl(2, "rollback", "db")
}
