package compat

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/strata-lb/strata/internal/registry"
)

// Timings of the cluster tests: heartbeats fast enough that an instance
// whose beats stopped is gone within seconds, and idle connections asked
// after half a second, so every client of these tests answers many
// detections (and must not be cut for it).
var clusterLiveness = registry.LivenessOptions{Interval: 200 * time.Millisecond, UnhealthyAfter: time.Second, RemoveAfter: 2 * time.Second}

// startCluster runs three registry nodes on 127.0.0.1, .2 and .3 (each
// its own address, as nodes on different hosts have), the second and
// third joining the first, and waits until all three are members.
func startCluster(t *testing.T) []*registry.Node {
	t.Helper()
	nodes := make([]*registry.Node, 3)
	for i := range nodes {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		o := registry.Options{
			RaftAddr: ip + ":0", NacosGRPC: ip + ":0", SweepInterval: 50 * time.Millisecond,
			Liveness: clusterLiveness, NacosGRPCIdle: 500 * time.Millisecond, NacosGRPCAckTimeout: time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if i > 0 {
			o.Join = []string{nodes[0].Addr().String()}
		}
		n, err := registry.Start(ln, o)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n.Close(ctx)
		})
		if i == 0 {
			waitFor(t, 10*time.Second, "the first node to lead", n.Serving)
		}
	}
	waitFor(t, 10*time.Second, "three members that know the leader", func() bool {
		for _, n := range nodes {
			if len(n.Members()) != 3 || n.Leader() == "" {
				return false
			}
		}
		return true
	})
	return nodes
}

// newClusterClient makes an official Nacos 2 naming client that knows the
// given nodes.
func newClusterClient(t *testing.T, nodes ...*registry.Node) naming_client.INamingClient {
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
	c, err := clients.NewNamingClient(vo.NacosClientParam{
		// UpdateCacheWhenEmpty: the SDK drops a push of no instances
		// unless told to take it, and these tests wait for such pushes.
		ClientConfig: &constant.ClientConfig{
			TimeoutMs: 5000, NotLoadCacheAtStart: true, UpdateCacheWhenEmpty: true, CacheDir: dir + "/cache", LogDir: dir + "/log", LogLevel: "error",
		},
		ServerConfigs: servers,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allHold waits until every node in nodes lists exactly ips for orders.
func allHold(t *testing.T, what string, nodes []*registry.Node, ips ...string) {
	t.Helper()
	waitFor(t, 10*time.Second, what, func() bool {
		for _, n := range nodes {
			if !eq(storeIPs(n), ips) {
				return false
			}
		}
		return true
	})
}

func connCounts(nodes []*registry.Node) []int {
	c := make([]int, len(nodes))
	for i, n := range nodes {
		c[i] = n.NacosGRPCConnections()
	}
	return c
}

// TestNacos2GRPCCluster drives the official Go SDK v2 against a 3-node
// cluster: writes that arrive at a follower, a subscription with pushes
// from another node, and a connection to a follower that ends.
func TestNacos2GRPCCluster(t *testing.T) {
	nodes := startCluster(t)
	var followers []*registry.Node
	for _, n := range nodes {
		if !n.IsLeader() {
			followers = append(followers, n)
		}
	}
	if len(followers) != 2 {
		t.Fatalf("%d followers", len(followers))
	}

	// A subscriber that knows the whole cluster.
	sub := newClusterClient(t, nodes...)
	defer sub.CloseClient()
	pushes := make(chan []string, 64)
	if err := sub.Subscribe(&vo.SubscribeParam{ServiceName: "orders", SubscribeCallback: func(hosts []model.Instance, err error) {
		pushes <- hostIPs(hosts)
	}}); err != nil {
		t.Fatal(err)
	}

	// Writes at a follower are taken (the follower applies them through
	// the leader) and replicated to every node.
	f := newClusterClient(t, followers[0])
	register(t, f, "127.0.0.61")
	allHold(t, "the registration at a follower on every node", nodes, "127.0.0.61")
	waitPush(t, pushes, []string{"127.0.0.61"})
	ok, err := f.DeregisterInstance(vo.DeregisterInstanceParam{Ip: "127.0.0.61", Port: 8080, ServiceName: "orders", Ephemeral: true})
	if err != nil || !ok {
		t.Fatalf("DeregisterInstance at a follower: %v %v", ok, err)
	}
	allHold(t, "the deregistration at a follower on every node", nodes)
	waitPush(t, pushes, []string{})

	// The end of a connection to a follower removes its instance.
	register(t, f, "127.0.0.62")
	waitPush(t, pushes, []string{"127.0.0.62"})
	f.CloseClient()
	allHold(t, "the closed follower connection's instance to go", nodes)
	waitPush(t, pushes, []string{})
}
