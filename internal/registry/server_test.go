package registry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
)

// TestServerApply: the supervisor's contract — start on the first config,
// change tokens on reload, refuse what needs a restart (and keep serving),
// stop when the section goes.
func TestServerApply(t *testing.T) {
	parse := func(y string) *config.Registry {
		c, err := config.Parse("t.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return c.Registry
	}
	base := "registry:\n  listen: " + freeAddr(t) + "\n  raft_listen: 127.0.0.1:0\n  data: memory\n"
	s := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer s.Shutdown(context.Background())
	if err := s.Apply(parse(base)); err != nil {
		t.Fatal(err)
	}
	n := s.Node()
	waitFor(t, 5*time.Second, "leader", n.Serving)
	put := func(token string) int {
		req, _ := http.NewRequest("PUT", "http://"+n.ID()+"/v1/registry/services", strings.NewReader(`{"service":"x"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(""); code != 200 {
		t.Fatalf("loopback admin write without a token configured: %d", code)
	}
	if err := s.Apply(parse(base + "  token: t1\n")); err != nil {
		t.Fatal(err)
	}
	if code := put(""); code != 401 {
		t.Fatalf("admin write without the new token: %d", code)
	}
	if code := put("t1"); code != 200 {
		t.Fatalf("admin write with the new token: %d", code)
	}
	if err := s.Apply(parse(base + "  token: t1\n  remove_after: 1m\n")); err == nil {
		t.Fatal("a restart-only change was applied")
	}
	if s.Node() != n || put("t1") != 200 {
		t.Fatal("a refused reload disturbed the node")
	}
	if err := s.Apply(nil); err != nil {
		t.Fatal(err)
	}
	if s.Node() != nil {
		t.Fatal("node still running without a section")
	}
}

func TestAdvertise(t *testing.T) {
	for _, tc := range []struct {
		desc, raft, adv, raftAdv, want string
	}{
		{"concrete bind advertises itself", "127.0.0.5:7848", "127.0.0.5:8848", "", ""},
		{"wildcard bind takes the advertised host", "0.0.0.0:7848", "127.0.0.5:8848", "", "127.0.0.5:7848"},
		{"empty host is a wildcard", ":7848", "node1.example:8848", "", "node1.example:7848"},
		{"explicit raft advertise wins", "0.0.0.0:7848", "127.0.0.5:8848", "127.9.9.9:7000", "127.9.9.9:7000"},
		{"port 0 binds first", "127.0.0.1:0", "127.0.0.1:8848", "", ""},
	} {
		n := &Node{opts: Options{RaftAddr: tc.raft, Advertise: tc.adv, RaftAdvertise: tc.raftAdv}}
		if got := n.raftAdvertise(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.desc, got, tc.want)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Start(ln, Options{RaftAddr: "127.0.0.1:0", Advertise: "0.0.0.0:8848"}); err == nil || !strings.Contains(err.Error(), "advertise") {
		t.Fatalf("a wildcard advertise address was accepted: %v", err)
	}
}

// TestCloseDoesNotWaitForSilentConnections: a client that connected and
// sent nothing (an HTTP client's spare dial, say) must not hold Close for
// the 5 s that http.Server.Shutdown grants such connections.
func TestCloseDoesNotWaitForSilentConnections(t *testing.T) {
	n := startNode(t, Options{})
	c, err := net.Dial("tcp", n.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server has taken the connection once a request on another one
	// has been answered after it (accepts are served in order).
	resp, err := http.Get("http://" + n.ID() + "/v1/registry/services?namespace=public")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close with a silent connection open: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the silent connection is still open after Close")
	}
}

// TestServerTokenFile: the admin and namespace tokens come from files
// that are not world-readable, read again on every reload; a
// world-readable one is refused with the field and the file named.
func TestServerTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		return testnet.WriteMode(t, filepath.Join(dir, name), body, mode)
	}
	admin := write("admin", "adm-1\n", 0o600)
	prod := write("prod", "p-1\n", 0o640)
	open := write("open", "x\n", 0o644)
	parse := func(y string) *config.Registry {
		c, err := config.Parse("t.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return c.Registry
	}
	base := "registry:\n  listen: " + freeAddr(t) + "\n  raft_listen: 127.0.0.1:0\n  data: memory\n"
	// The handler serialises its writes; logs is read after Shutdown.
	var logs bytes.Buffer
	s := NewServer(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer func() {
		s.Shutdown(context.Background())
		for _, secret := range []string{"adm-1", "p-1", "p-2"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("token %q is in the logs:\n%s", secret, logs.String())
			}
		}
	}()
	if err := s.Apply(parse(base + "  token_file: " + open + "\n")); err == nil || !strings.Contains(err.Error(), "registry.token_file") || !strings.Contains(err.Error(), "world-readable") {
		t.Fatalf("a world-readable token file: err = %v", err)
	}
	files := base + "  token_file: " + admin + "\n  namespaces: [{name: prod, token_file: " + prod + "}]\n"
	if err := s.Apply(parse(files)); err != nil {
		t.Fatal(err)
	}
	n := s.Node()
	waitFor(t, 5*time.Second, "leader", n.Serving)
	reg := map[string]any{"namespace": "prod", "service": "web", "ip": "127.0.0.1", "port": 80}
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 403}, {"p-1", 200}, {"adm-1", 200}} {
		if code, body, _ := do(t, "PUT", "http://"+n.ID()+"/v1/registry/instances", tc.token, reg); code != tc.want {
			t.Errorf("token %q: %d %s, want %d", tc.token, code, body, tc.want)
		}
	}
	// A rotated file takes effect with a reload.
	write("prod", "p-2\n", 0o600)
	if err := s.Apply(parse(files)); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := do(t, "PUT", "http://"+n.ID()+"/v1/registry/instances", "p-1", reg); code != 403 {
		t.Errorf("the old namespace token after the rotation: %d", code)
	}
	if code, body, _ := do(t, "PUT", "http://"+n.ID()+"/v1/registry/instances", "p-2", reg); code != 200 {
		t.Errorf("the new namespace token after the rotation: %d %s", code, body)
	}
}
