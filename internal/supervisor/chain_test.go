package supervisor

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/admin"
)

// TestChain runs every role on port 0 and reads the chain through the
// admin API: the hops in the order a request meets them, with the ports
// the roles really bound and the pools of every route, split and name.
func TestChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strata.yaml")
	writeConfig(t, path, `admin:
  listen: 127.0.0.1:0
pools:
  - {name: vip, backends: [{address: 127.0.0.1:1}]}
  - {name: eu, backends: [{address: 127.0.0.1:2}]}
  - {name: l7-nodes, backends: [{address: 127.0.0.1:3}]}
  - {name: app, backends: [{address: 127.0.0.1:4}]}
  # Followed, but sent to by the l7 listener: no app hop of its own.
  - {name: canary, registry: {servers: [127.0.0.1:1], service: web}}
  - {name: spare, backends: [{address: 127.0.0.1:5}]}
  - {name: api, backends: [{address: 127.0.0.1:6}]}
dns:
  listen: [127.0.0.1:0]
  zones:
    - name: demo.test
      records: ["@ SOA ns1 hostmaster 1 3600 600 86400 60", "@ NS ns1", "ns1 A 127.0.0.1"]
      balanced:
        - name: www
          groups: [{pool: vip}, {pool: eu}]
        - name: api
          pool: vip
l4:
  services:
    - name: edge
      listen: 127.0.0.1:0
      pool: l7-nodes
l7:
  listeners:
    - name: web
      listen: 127.0.0.1:0
      routes:
        - path_prefix: /api/
          pool: api
        - path: /moved
          redirect: {path: /}
        - pool: app
          split: [{pool: canary, weight: 10}]
registry:
  listen: 127.0.0.1:0
  raft_listen: 127.0.0.1:0
  data: memory
`)
	sup, hops := readChain(t, path)
	if len(hops) != 4 {
		t.Fatalf("chain has %d hops, want dns, l4, l7, registry: %+v", len(hops), hops)
	}
	for i, h := range hops {
		// Port 0 is what the config asked for; the chain shows the real port.
		if h.Listen == "" || strings.HasSuffix(h.Listen, ":0") {
			t.Errorf("hop %d (%s %s) listens on %q, want the bound address", i, h.Role, h.Name, h.Listen)
		}
		hops[i].Listen = ""
	}
	if got, want := hops[3].Name, sup.ServiceRegistry().(interface{ ID() string }).ID(); got != want {
		t.Errorf("registry hop is named %q, want the node's address %q", got, want)
	}
	hops[3].Name = ""
	want := []admin.Hop{
		{Role: "dns", Name: "demo.test", Names: []string{"www", "api"}, Pools: []string{"vip", "eu"}},
		{Role: "l4", Name: "edge", Protocol: "tcp", Pools: []string{"l7-nodes"}},
		{Role: "l7", Name: "web", Names: []string{"/api/ → api", "/ → app (+ canary)"}, Pools: []string{"api", "app", "canary"},
			Registry: map[string]string{"canary": "public/DEFAULT_GROUP/web"}},
		{Role: "registry", Pools: []string{}},
	}
	if !reflect.DeepEqual(hops, want) {
		t.Errorf("chain =\n%+v\nwant\n%+v", hops, want)
	}
}

// readChain starts a supervisor on the config at path and reads its chain
// through the admin API.
func readChain(t *testing.T, path string) (*Supervisor, []admin.Hop) {
	t.Helper()
	sup := New(Options{Source: Source{Path: path}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sup.Shutdown(ctx)
	})
	res, err := http.Get("http://" + sup.Admin().Addr().String() + "/api/v1/chain")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var hops []admin.Hop
	if err := json.NewDecoder(res.Body).Decode(&hops); err != nil {
		t.Fatal(err)
	}
	return sup, hops
}

// TestChainL7Elsewhere is the demo's edge: an l4 service in front of l7
// nodes that run in other processes, and a pool that only follows the
// registry service the l7 nodes send to. The l4 hop says its backends are
// l7 nodes, with the admin address of those that name one; the followed
// pool is an app hop; a udp service's backends stay plain backends.
func TestChainL7Elsewhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strata.yaml")
	writeConfig(t, path, `admin:
  listen: 127.0.0.1:0
pools:
  - name: l7-nodes
    backends:
      - {name: l7-a, address: 127.0.0.1:1, tags: {admin: "127.0.0.1:9911"}}
      - {name: l7-b, address: 127.0.0.1:2}
      - {address: 127.0.0.1:3, tags: {admin: "not an address"}}
  - {name: resolvers, backends: [{address: 127.0.0.1:4, tags: {admin: "127.0.0.1:9913"}}]}
  - {name: app, registry: {servers: [127.0.0.1:5], service: web}}
  - {name: spare, backends: [{address: 127.0.0.1:6}]}
l4:
  services:
    - name: edge
      listen: 127.0.0.1:0
      pool: l7-nodes
    - name: dns
      protocol: udp
      listen: 127.0.0.1:0
      pool: resolvers
`)
	_, hops := readChain(t, path)
	for i := range hops {
		hops[i].Listen = ""
	}
	want := []admin.Hop{
		{Role: "l4", Name: "edge", Protocol: "tcp", Pools: []string{"l7-nodes"},
			BackendRole: "l7", Admin: map[string]string{"l7-a": "127.0.0.1:9911"}},
		{Role: "l4", Name: "dns", Protocol: "udp", Pools: []string{"resolvers"}},
		{Role: "app", Name: "app", Pools: []string{"app"}, Registry: map[string]string{"app": "public/DEFAULT_GROUP/web"}},
	}
	if !reflect.DeepEqual(hops, want) {
		t.Errorf("chain =\n%+v\nwant\n%+v", hops, want)
	}
}
