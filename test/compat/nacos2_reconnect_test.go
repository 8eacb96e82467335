//go:build !race

package compat

import (
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/strata-lb/strata/internal/registry"
)

// The tests in this file make the SDK reconnect, and nacos-sdk-go v2.3.5
// has a data race there: RpcClient.reconnect writes currentConnection
// while the goroutine that delivers the DISCONNECTED event of the old
// connection reads it to log its ID (rpc_client.go:449 and :487). The
// race detector fails every test in which an SDK client reconnects, so
// these are built without -race; `make test` runs them in a second pass,
// `go test -run Reconnect` in test/compat.

// TestNacos2GRPCReconnectCluster: the node a client is connected to — the
// leader — is killed; the client moves to another node, registers again
// there (through the new leader), and its instance stays for as long as
// its new connection lives.
func TestNacos2GRPCReconnectCluster(t *testing.T) {
	nodes := startCluster(t)
	sub := newClusterClient(t, nodes...)
	defer sub.CloseClient()
	pushes := make(chan []string, 64)
	if err := sub.Subscribe(&vo.SubscribeParam{ServiceName: "orders", SubscribeCallback: func(hosts []model.Instance, err error) {
		pushes <- hostIPs(hosts)
	}}); err != nil {
		t.Fatal(err)
	}

	// The SDK connects to a node of its list at random; clients are made
	// until one is connected to the leader, the hardest node to lose:
	// writes wait for an election, and the dead node removes nothing.
	var r naming_client.INamingClient
	home := -1
	for tries := 0; home < 0 || !nodes[home].IsLeader(); tries++ {
		if r != nil {
			r.CloseClient()
		}
		if tries == 20 {
			t.Fatal("no client connected to the leader in 20 tries")
		}
		waitFor(t, 5*time.Second, "the other clients' connections to end", func() bool {
			c := connCounts(nodes)
			return c[0]+c[1]+c[2] == 1 // the subscriber's
		})
		before := connCounts(nodes)
		r = newClusterClient(t, nodes...)
		waitFor(t, 5*time.Second, "the new client's connection", func() bool {
			for i, c := range connCounts(nodes) {
				if c > before[i] {
					home = i
					return true
				}
			}
			return false
		})
	}
	defer r.CloseClient()
	register(t, r, "127.0.0.63")
	allHold(t, "the registration on every node", nodes, "127.0.0.63")
	waitPush(t, pushes, []string{"127.0.0.63"})
	nodes[home].Kill()
	var alive []*registry.Node
	for i, n := range nodes {
		if i != home {
			alive = append(alive, n)
		}
	}
	waitFor(t, 10*time.Second, "the client to connect to another node", func() bool {
		c := connCounts(alive)
		return c[0]+c[1] >= 2 // the subscriber's and the client's
	})
	waitFor(t, 10*time.Second, "a leader among the nodes left", func() bool { return alive[0].Serving() || alive[1].Serving() })
	allHold(t, "the instance on the nodes left", alive, "127.0.0.63")
	// It stays through more than its heartbeat timeout: the node the
	// client moved to beats for it.
	until := time.Now().Add(clusterLiveness.RemoveAfter + time.Second)
	for time.Now().Before(until) {
		for _, n := range alive {
			if got := storeIPs(n); !eq(got, []string{"127.0.0.63"}) {
				t.Fatalf("node %s lists %v after the failover, want the moved client's instance", n.ID(), got)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Its new connection owns it: when the client goes, so does it, and
	// the subscriber (which may have moved too) is pushed the change.
	r.CloseClient()
	allHold(t, "the moved client's instance to go with its connection", alive)
	waitPush(t, pushes, []string{})
}

// TestNacos2GRPCReconnectSameNode: when the server cuts a client's connection,
// the client reconnects to the same node and registers again, and the
// end of the old connection does not take the instance with it.
func TestNacos2GRPCReconnectSameNode(t *testing.T) {
	n := startRegistry(t, registry.Options{Liveness: clusterLiveness, NacosGRPCIdle: 500 * time.Millisecond, NacosGRPCAckTimeout: time.Second})
	c := newClient(t, n)
	defer c.CloseClient()
	register(t, c, "127.0.0.71")
	if cut := n.ResetNacosGRPCConnections(); cut != 1 {
		t.Fatalf("cut %d connections, want 1", cut)
	}
	waitFor(t, 10*time.Second, "the client to reconnect and register again", func() bool {
		return n.NacosGRPCConnections() == 1 && eq(storeIPs(n), []string{"127.0.0.71"})
	})
	// Through more than a heartbeat timeout it stays: the new connection
	// beats for it, and idle-connection detections are answered.
	until := time.Now().Add(clusterLiveness.RemoveAfter + time.Second)
	for time.Now().Before(until) {
		if got := storeIPs(n); !eq(got, []string{"127.0.0.71"}) || n.NacosGRPCConnections() != 1 {
			t.Fatalf("after the reconnect: %v, %d connections", got, n.NacosGRPCConnections())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
