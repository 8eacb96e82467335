package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// clusterNode starts (or restarts) a node on a fixed HTTP address so its
// ID survives the restart.
func clusterNode(t *testing.T, httpAddr, raftAddr, dir string, join []string) *Node {
	t.Helper()
	var ln net.Listener
	var err error
	// A port just freed by a killed node may linger briefly.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", httpAddr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(ln, Options{
		RaftAddr: raftAddr, DataDir: dir, Join: join,
		Liveness:      LivenessOptions{RemoveAfter: 10 * time.Minute, UnhealthyAfter: 5 * time.Minute},
		SweepInterval: 100 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ipOf(i int) string { return fmt.Sprintf("127.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

func freeAddr(t *testing.T) string { return testnet.FreeAddr(t) }

func register(c *http.Client, node string, i int) error {
	b, _ := json.Marshal(map[string]any{"service": "pay", "ip": ipOf(i), "port": 80})
	req, _ := http.NewRequest(http.MethodPut, "http://"+node+"/v1/registry/instances", bytes.NewReader(b))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// TestClusterFailover: three nodes on loopback; the leader is killed while
// instances register. No acknowledged registration is lost, a new leader
// serves within 5 s, and the old leader, restarted, catches up.
func TestClusterFailover(t *testing.T) {
	// -short is a developer's explicit request for the quick tests only;
	// make test and CI never pass it.
	if testing.Short() {
		t.Skip("-short: skipping the three-node failover")
	}
	base := t.TempDir()
	type spec struct{ http, raft, dir string }
	specs := make([]spec, 3)
	for i := range specs {
		specs[i] = spec{freeAddr(t), freeAddr(t), filepath.Join(base, fmt.Sprint(i))}
	}
	nodes := make([]*Node, 3)
	nodes[0] = clusterNode(t, specs[0].http, specs[0].raft, specs[0].dir, nil)
	waitFor(t, 5*time.Second, "bootstrap leader", nodes[0].IsLeader)
	for i := 1; i < 3; i++ {
		nodes[i] = clusterNode(t, specs[i].http, specs[i].raft, specs[i].dir, []string{specs[0].http})
	}
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.Kill()
			}
		}
	}()
	waitFor(t, 10*time.Second, "three members", func() bool { return len(nodes[0].Members()) == 3 })
	for _, n := range nodes {
		waitFor(t, 5*time.Second, "followers to know the leader", func() bool { return n.Leader() != "" })
	}

	client := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	acked := map[int]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var next int
	var nextMu sync.Mutex
	alive := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var a []string
		for i, n := range nodes {
			if n != nil {
				a = append(a, specs[i].http)
			}
		}
		return a
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				nextMu.Lock()
				i := next
				next++
				nextMu.Unlock()
				a := alive()
				if register(client, a[i%len(a)], i) == nil {
					mu.Lock()
					acked[i] = true
					mu.Unlock()
				}
			}
		}()
	}
	// Each registration is a Raft commit on three nodes; under -race on a
	// loaded machine 200 of them took more than 10 s, so the deadline is
	// generous (the condition usually holds within 2 s).
	waitFor(t, 30*time.Second, "registrations before the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	li := -1
	for i, n := range nodes {
		if n.IsLeader() {
			li = i
		}
	}
	if li < 0 {
		t.Fatal("no leader")
	}
	mu.Lock()
	old := nodes[li]
	nodes[li] = nil
	mu.Unlock()
	killed := time.Now()
	old.Kill()
	var newLeader *Node
	waitFor(t, 5*time.Second, "a new leader", func() bool {
		for _, n := range nodes {
			if n != nil && n.IsLeader() {
				newLeader = n
				return true
			}
		}
		return false
	})
	t.Logf("new leader %s after %v", newLeader.ID(), time.Since(killed).Round(time.Millisecond))
	// It serves: a registration through it succeeds.
	if err := register(client, newLeader.ID(), 1_000_000); err != nil {
		t.Fatalf("new leader does not serve: %v", err)
	}
	mu.Lock()
	acked[1_000_000] = true
	n0 := len(acked)
	mu.Unlock()
	waitFor(t, 10*time.Second, "registrations after the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= n0+200
	})
	close(stop)
	wg.Wait()

	has := func(n *Node) func() bool {
		return func() bool {
			v, _ := n.Store().Get(Key{Service: "pay"})
			got := map[string]bool{}
			for _, in := range v.Instances {
				got[in.IP] = true
			}
			for i := range acked {
				if !got[ipOf(i)] {
					return false
				}
			}
			return true
		}
	}
	for _, n := range nodes {
		if n != nil {
			waitFor(t, 10*time.Second, "every acknowledged registration on "+n.ID(), has(n))
		}
	}
	t.Logf("%d registrations acknowledged, none lost", len(acked))

	// Restart the killed node on its data dir: it catches up.
	s := specs[li]
	re := clusterNode(t, s.http, s.raft, s.dir, []string{specs[(li+1)%3].http})
	mu.Lock()
	nodes[li] = re
	mu.Unlock()
	waitFor(t, 15*time.Second, "the restarted node to catch up", has(re))
	if re.Store().Index() == 0 {
		t.Fatal("restarted node has an empty store")
	}
}
