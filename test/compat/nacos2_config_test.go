//go:build !race

package compat

// The tests in this file close SDK config clients, and nacos-sdk-go v2.3.5
// has a data race there: RpcClient.Shutdown deletes the client from the
// package's clientMap without the mutex (rpc_client.go:384) while the
// config client's listen goroutine, still running until CloseClient
// cancels it after Shutdown, reads the map under that mutex in CreateClient
// (rpc_client.go:156, from config_proxy.go:182). CI's race detector caught
// it when a change notification had just woken that goroutine. Like the
// Reconnect tests, these are built without -race and `make test` runs them
// in its second pass; the server side of the same requests runs under
// -race in internal/registry (nacos_grpc_test.go).

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/strata-lb/strata/internal/registry"
)

// newConfigClient makes an official Nacos 2 config client (gRPC) that
// knows the given nodes.
func newConfigClient(t *testing.T, nodes ...*registry.Node) config_client.IConfigClient {
	t.Helper()
	var servers []constant.ServerConfig
	for _, n := range nodes {
		host, hp, _ := net.SplitHostPort(n.Addr().String())
		_, gp, _ := net.SplitHostPort(n.NacosGRPCAddr().String())
		httpPort, _ := strconv.ParseUint(hp, 10, 64)
		grpcPort, _ := strconv.ParseUint(gp, 10, 64)
		servers = append(servers, constant.ServerConfig{IpAddr: host, Port: httpPort, GrpcPort: grpcPort})
	}
	dir := sdkDir(t)
	c, err := clients.NewConfigClient(vo.NacosClientParam{
		ClientConfig: &constant.ClientConfig{
			TimeoutMs: 5000, NotLoadCacheAtStart: true, CacheDir: dir + "/cache", LogDir: dir + "/log", LogLevel: "error",
		},
		ServerConfigs: servers,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseClient)
	return c
}

// configScenario drives the SDK's config client through publish, get, a
// compare-and-set, listen with a change notification, and remove; the
// writer talks to writeTo, the listener to listenOn.
func configScenario(t *testing.T, writeTo, listenOn []*registry.Node) {
	w, l := newConfigClient(t, writeTo...), newConfigClient(t, listenOn...)
	p := vo.ConfigParam{DataId: "app.yaml", Group: "DEFAULT_GROUP"}

	p.Content = "port: 8080\n"
	if ok, err := w.PublishConfig(p); err != nil || !ok {
		t.Fatalf("PublishConfig: %v %v", ok, err)
	}
	waitFor(t, 5*time.Second, "the content on the listener's side", func() bool {
		got, err := l.GetConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group})
		return err == nil && got == "port: 8080\n"
	})

	changes := make(chan string, 16)
	if err := l.ListenConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group, OnChange: func(_, _, _, data string) {
		changes <- data
	}}); err != nil {
		t.Fatal(err)
	}
	// A compare-and-set against a stale md5 is refused and changes nothing.
	if ok, _ := w.PublishConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group, Content: "port: 1\n", CasMd5: registry.ContentMD5("stale")}); ok {
		t.Fatal("a publish with a stale casMd5 was taken")
	}
	// One against the current md5 is taken, and the listener is told.
	if ok, err := w.PublishConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group, Content: "port: 9090\n", CasMd5: registry.ContentMD5("port: 8080\n")}); err != nil || !ok {
		t.Fatalf("PublishConfig with casMd5: %v %v", ok, err)
	}
	// The SDK hears of it from the server's push, or, when the publish
	// came before its first listen request, from that request's answer
	// (the push itself is tested in internal/registry).
	waitChange(t, changes, "port: 9090\n")

	if ok, err := w.DeleteConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group}); err != nil || !ok {
		t.Fatalf("DeleteConfig: %v %v", ok, err)
	}
	waitChange(t, changes, "")
	// The writer's node may apply the removal a moment after the leader.
	waitFor(t, 5*time.Second, "the removal on the writer's side", func() bool {
		got, err := w.GetConfig(vo.ConfigParam{DataId: p.DataId, Group: p.Group})
		return err == nil && got == ""
	})
}

// waitChange waits for a change notification with content want.
func waitChange(t *testing.T, changes <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var seen []string
	for {
		select {
		case got := <-changes:
			if got == want {
				return
			}
			seen = append(seen, got)
		case <-deadline:
			t.Fatalf("no change to %q within 10s (saw %q)", want, seen)
		}
	}
}

// TestNacos2GRPCConfig: the SDK's config client against one node.
func TestNacos2GRPCConfig(t *testing.T) {
	n := startRegistry(t, registry.Options{})
	configScenario(t, []*registry.Node{n}, []*registry.Node{n})
}

// TestNacos2GRPCConfigCluster: against a 3-node cluster, the writer
// connected to a follower (its writes go through the leader) and the
// listener to the other follower (pushed from what Raft applied there).
func TestNacos2GRPCConfigCluster(t *testing.T) {
	nodes := startCluster(t)
	var followers []*registry.Node
	for _, n := range nodes {
		if !n.IsLeader() {
			followers = append(followers, n)
		}
	}
	configScenario(t, followers[:1], followers[1:])
}
