package registry

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
)

// TestPersistentChecks: the leader checks persistent instances with the
// core's tcp checker; a dead one turns unhealthy, a revived one healthy,
// and neither is ever removed.
func TestPersistentChecks(t *testing.T) {
	// The checked server's port stays the test's while the server is
	// down, so no other listener can answer the checks in its place.
	srv := testnet.NewHeld(t, "127.0.0.1")
	addr, err := net.ResolveTCPAddr("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// The heartbeat clock is the test's, so "far past remove_after" is a
	// step of it rather than a wait.
	clk := &fakeClock{t: time.Unix(1000, 0)}
	n := startNode(t, Options{
		Checks:   CheckOptions{Check: &config.HealthCheck{Type: "tcp", Interval: config.Duration(50 * time.Millisecond), Timeout: config.Duration(40 * time.Millisecond), Rise: 1, Fall: 2}},
		Liveness: LivenessOptions{UnhealthyAfter: 50 * time.Millisecond, RemoveAfter: 100 * time.Millisecond, Now: clk.now},
	})
	k := Key{Service: "db"}
	in := Instance{IP: "127.0.0.1", Port: addr.Port, Weight: 1, Healthy: false, Enabled: true, Ephemeral: false}
	if _, err := n.Propose(&Command{Op: OpRegister, Key: k, Instances: []Instance{in}}); err != nil {
		t.Fatal(err)
	}
	id := "127.0.0.1#" + strconv.Itoa(addr.Port) + "#DEFAULT"
	state := func() (bool, bool) { i, ok := n.Store().Instance(k, id); return i.Healthy, ok }
	waitFor(t, 5*time.Second, "a passing check to mark it healthy", func() bool { h, _ := state(); return h })
	srv.Stop()
	waitFor(t, 5*time.Second, "failing checks to mark it unhealthy", func() bool { h, ok := state(); return ok && !h })
	// A sweep far past remove_after, whose command is replicated as the
	// leader's would be: persistent instances are never removed by the
	// servers.
	clk.add(time.Hour)
	if c := n.live.Sweep(n.store); c != nil {
		if _, err := n.Propose(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := state(); !ok {
		t.Fatal("persistent instance removed")
	}
}
