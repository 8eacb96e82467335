package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/registry"
	"github.com/strata-lb/strata/internal/testnet"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRegistryRemovePeer: in a cluster of three, one node dies; `strata
// registry remove-peer` through a follower removes it for good, and the
// two left are a cluster of two that keeps taking writes.
func TestRegistryRemovePeer(t *testing.T) {
	// -short is a developer's explicit request for the quick tests only;
	// make test and CI never pass it.
	if testing.Short() {
		t.Skip("-short: skipping the three-node cluster")
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(join []string) *registry.Node {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n, err := registry.Start(ln, registry.Options{RaftAddr: "127.0.0.1:0", Join: join, AdminToken: "adm", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Kill)
		return n
	}
	leader := start(nil)
	waitFor(t, "the first node to lead", leader.IsLeader)
	nodes := []*registry.Node{leader, start([]string{leader.ID()}), start([]string{leader.ID()})}
	waitFor(t, "three members", func() bool { return len(leader.Members()) == 3 })
	follower, dead := nodes[1], nodes[2]
	waitFor(t, "the follower to know the leader", func() bool { return follower.Leader() == leader.ID() })
	dead.Kill()

	dir := t.TempDir()
	open := testnet.WriteMode(t, filepath.Join(dir, "open-token"), "adm\n", 0o644)
	var stdout, stderr bytes.Buffer
	if code := cmdRegistry([]string{"remove-peer", dead.ID(), "--server", follower.ID(), "--token-file", open}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "world-readable") {
		t.Fatalf("a world-readable token file: exit %d, %s", code, stderr.String())
	}
	stderr.Reset()
	if code := cmdRegistry([]string{"remove-peer", dead.ID(), "--server", follower.ID()}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "401") {
		t.Fatalf("without a token: exit %d, %s", code, stderr.String())
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("adm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := cmdRegistry([]string{"remove-peer", dead.ID(), "--server", follower.ID(), "--token-file", tokenFile}, &stdout, &stderr); code != 0 {
		t.Fatalf("remove-peer: exit %d, %s", code, stderr.String())
	}
	for _, n := range nodes[:2] {
		waitFor(t, "a configuration of two", func() bool {
			ms := n.Members()
			return len(ms) == 2 && string(ms[0].ID) != dead.ID() && string(ms[1].ID) != dead.ID()
		})
	}
	// A write through either survivor commits on the two of them.
	for i, n := range nodes[:2] {
		req, _ := http.NewRequest("PUT", "http://"+n.ID()+"/v1/registry/instances", strings.NewReader(`{"service":"pay","ip":"127.0.0.`+string(rune('1'+i))+`","port":80}`))
		req.Header.Set("Authorization", "Bearer adm")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("write through %s after the removal: %d %s", n.ID(), resp.StatusCode, body)
		}
	}
	waitFor(t, "both writes on both survivors", func() bool {
		for _, n := range nodes[:2] {
			if v, _ := n.Store().Get(registry.Key{Service: "pay"}); len(v.Instances) != 2 {
				return false
			}
		}
		return true
	})
	stderr.Reset()
	if code := cmdRegistry([]string{"remove-peer", dead.ID(), "--server", follower.ID(), "--token-file", tokenFile}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "404") {
		t.Fatalf("removing it again: exit %d, %s", code, stderr.String())
	}
}
