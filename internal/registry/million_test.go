package registry

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestMillionInstances measures a three-node cluster (in this process,
// Raft over loopback TCP, logs on disk with fsync) holding
// STRATA_MILLION ephemeral instances in STRATA_MILLION/100 services: the
// memory per instance, a snapshot and its restore, a heartbeat sweep, a
// new node catching up and a leader failover. It is a measurement, not
// part of make test:
//
//	STRATA_MILLION=1000000 go test -run TestMillionInstances -v -timeout 60m ./internal/registry/
func TestMillionInstances(t *testing.T) {
	total, _ := strconv.Atoi(os.Getenv("STRATA_MILLION"))
	if total <= 0 {
		t.Skip("set STRATA_MILLION=<instances> to run this measurement")
	}
	const perService = 100
	services := max(total/perService, 1)
	total = services * perService
	base := t.TempDir()
	lim := Limits{InstancesPerNamespace: total + 1000, ServicesPerNamespace: services + 10, InstancesPerService: perService * 2}
	start := func(i int, join []string) *Node {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n, err := Start(ln, Options{
			RaftAddr: "127.0.0.1:0", DataDir: filepath.Join(base, strconv.Itoa(i)), Join: join,
			Limits:        lim,
			Liveness:      LivenessOptions{UnhealthyAfter: time.Hour, RemoveAfter: time.Hour},
			SweepInterval: time.Second, // the default
			Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Kill() })
		return n
	}
	nodes := []*Node{start(0, nil)}
	waitFor(t, 10*time.Second, "leader", nodes[0].IsLeader)
	nodes = append(nodes, start(1, []string{nodes[0].ID()}), start(2, []string{nodes[0].ID()}))
	waitFor(t, 20*time.Second, "three members", func() bool { return len(nodes[0].Members()) == 3 })
	// The machine may be loaded enough for leadership to move (Raft's
	// timeouts are 500 ms); every phase asks who leads now, as a client
	// would after a refusal.
	var elections atomic.Int64
	leaderNow := func() *Node {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, n := range nodes {
				if n.IsLeader() {
					return n
				}
			}
		}
		return nil
	}
	propose := func(c *Command) error {
		err := errors.New("no leader for a minute")
		for range 50 {
			l := leaderNow()
			if l == nil {
				return err
			}
			if _, err = l.Propose(c); err == nil {
				return nil
			}
			elections.Add(1)
		}
		return err
	}

	heap0, rss0 := memNow()
	// Load through Raft: one entry per service of 100 instances, from 8
	// proposers at once (a registration over HTTP is measured by
	// bench/registry; here the point is the size).
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var loadErr atomic.Value
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s := int(next.Add(1)) - 1
				if s >= services {
					return
				}
				ins := make([]Instance, perService)
				for i := range ins {
					k := s*perService + i
					ins[i] = Instance{IP: fmt.Sprintf("10.%d.%d.%d", k>>16&255, k>>8&255, k&255), Port: 8080, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true,
						Metadata: map[string]string{"version": "v" + strconv.Itoa(k%3)}}
				}
				if err := propose(&Command{Op: OpRegister, Key: Key{Service: "svc-" + strconv.Itoa(s)}, Instances: ins}); err != nil {
					loadErr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := loadErr.Load(); e != nil {
		t.Fatal(e)
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Minute, "every node to apply the load", func() bool { _, c := n.Store().Count(); return c == total })
	}
	load := time.Since(t0)
	heap1, rss1 := memNow()
	perInst := func(a, b uint64) float64 { return float64(int64(b)-int64(a)) / float64(3*total) }
	report := []string{
		fmt.Sprintf("instances=%d services=%d nodes=3 load_s=%.1f load_per_s=%.0f proposals_retried=%d", total, services, load.Seconds(), float64(total)/load.Seconds(), elections.Load()),
		fmt.Sprintf("heap_bytes_per_instance_per_node=%.0f rss_bytes_per_instance_per_node=%.0f rss_total_mb=%d", perInst(heap0, heap1), perInst(rss0, rss1), rss1>>20),
	}

	// A snapshot of the leader's state, as Raft takes every 8192 entries.
	leader := leaderNow()
	if leader == nil {
		t.Fatal("no leader for a minute")
	}
	dir := filepath.Join(base, strconv.Itoa(slices.Index(nodes, leader)))
	t1 := time.Now()
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapTook := time.Since(t1)
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("no snapshot: %v", err)
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	t2 := time.Now()
	restored := NewStore()
	if err := restored.Load(rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	restoreTook := time.Since(t2)
	if _, c := restored.Count(); c != total {
		t.Fatalf("restored %d instances, want %d", c, total)
	}
	restored = nil
	report = append(report, fmt.Sprintf("snapshot_s=%.2f snapshot_mb=%.0f restore_s=%.2f", snapTook.Seconds(), float64(list[0].Size)/(1<<20), restoreTook.Seconds()))

	// The leader's heartbeat sweep (its leader loop runs one each second;
	// by now they have seen every instance): the steady state, timed
	// three times.
	var sweeps []string
	for range 3 {
		t3 := time.Now()
		if c := leader.live.Sweep(leader.store); c != nil {
			t.Fatalf("steady sweep changed %d services", len(c.Batch))
		}
		sweeps = append(sweeps, fmt.Sprintf("%.0f", float64(time.Since(t3).Microseconds())/1e3))
	}
	report = append(report, "sweep_ms="+strings.Join(sweeps, ","))

	// A new node joins and catches up (a snapshot sent by the leader,
	// then the log after it).
	t5 := time.Now()
	fourth := start(3, []string{leader.ID()})
	nodes = append(nodes, fourth)
	waitFor(t, 10*time.Minute, "the new node to catch up", func() bool { _, c := fourth.Store().Count(); return c == total })
	report = append(report, fmt.Sprintf("new_node_catch_up_s=%.2f", time.Since(t5).Seconds()))

	// Failover: the leader is killed; how long until another node leads,
	// and until a write through it is committed.
	if leader = leaderNow(); leader == nil {
		t.Fatal("no leader for a minute")
	}
	t6 := time.Now()
	leader.Kill()
	var next2 *Node
	waitFor(t, time.Minute, "a new leader", func() bool {
		for _, n := range nodes {
			if n != leader && n.IsLeader() {
				next2 = n
				return true
			}
		}
		return false
	})
	failover := time.Since(t6)
	if _, err := next2.Propose(&Command{Op: OpRegister, Key: Key{Service: "after-failover"}, Instances: []Instance{{IP: "10.255.255.1", Port: 1, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}}}); err != nil {
		t.Fatal(err)
	}
	report = append(report, fmt.Sprintf("failover_s=%.2f first_write_after_s=%.2f", failover.Seconds(), time.Since(t6).Seconds()))
	t.Log("\n" + strings.Join(report, "\n"))
}

// memNow returns the live heap after a collection and the process's RSS.
func memNow() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return ms.HeapAlloc, rss
}
