package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// The BGP cluster's network: a router running FRR (zebra and bgpd) and l4
// nodes on one bridge. Each node holds the VIP on its lo (a later layer
// of strata will put it there) and runs strata with a backend of its own.
const (
	bgpSubnet = "10.252.0."
	bgpVIP    = "10.252.9.1"
)

// startFRR runs zebra and bgpd in the router's namespace with conf as
// bgpd's config. FRR drops to user frr, so its run directory belongs to
// frr; -N keeps this instance's sockets apart from any other.
func startFRR(t *testing.T, rt *testnet.Netns, conf string) {
	t.Helper()
	run := "/var/run/frr/" + rt.Name
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	for _, f := range []struct{ name, text string }{
		{"zebra.conf", "hostname " + rt.Name + "\n"},
		{"bgpd.conf", conf},
		{"vtysh.conf", ""},
	} {
		if err := os.WriteFile(filepath.Join(run, f.name), []byte(f.text), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	testnet.Run(t, "", "chown", "-R", "frr:frr", run)
	for _, d := range []string{"zebra", "bgpd"} {
		var logs bytes.Buffer
		lw := &lockedWriter{w: &logs}
		cmd := rt.Cmd("/usr/lib/frr/"+d, "-N", rt.Name, "-f", filepath.Join(run, d+".conf"),
			"-i", filepath.Join(run, d+".pid"), "--log", "stdout")
		cmd.Stdout, cmd.Stderr = lw, lw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s log:\n%s", d, logText(lw))
			}
		})
		if d == "zebra" {
			// bgpd installs routes through zebra's socket: wait for it.
			eventually(t, 10*time.Second, "zebra's socket", func() bool {
				_, err := os.Stat(filepath.Join(run, "zserv.api"))
				return err == nil
			})
		}
	}
}

// vipNextHops returns the next hops of the router's route to the VIP,
// sorted; none when it has no route.
func vipNextHops(t *testing.T, rt *testnet.Netns) []string {
	t.Helper()
	return nextHops(t, rt, bgpVIP)
}

func nextHops(t *testing.T, rt *testnet.Netns, vip string) []string {
	t.Helper()
	out := rt.Run(t, "ip", "route", "show", vip+"/32")
	var hops []string
	for _, m := range regexp.MustCompile(`via (\S+)`).FindAllStringSubmatch(out, -1) {
		hops = append(hops, m[1])
	}
	slices.Sort(hops)
	return hops
}

type bgpNode struct {
	ns      *testnet.Netns
	conf    string // the config file's path
	addr    string
	backend *testnet.NamedServer
	cmd     *exec.Cmd
	logs    *lockedWriter
}

// TestL4BGPCluster: two l4 nodes announce one VIP to an FRR router,
// which installs one route with both as next hops; a node whose only
// backend fails leaves the route, and comes back when it returns; a node
// told to stop leaves the route while it still serves.
func TestL4BGPCluster(t *testing.T) {
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	testnet.NeedTool(t, "curl", "curl")
	testnet.NeedTool(t, "/usr/lib/frr/bgpd", "frr")
	testnet.NeedTool(t, "/usr/lib/frr/zebra", "frr")
	br := testnet.NewBridge(t, "bsw")
	rt := testnet.NewNetns(t, "brt")
	br.Plug(t, rt, "eth0")
	rt.Run(t, "ip", "addr", "add", bgpSubnet+"1/24", "dev", "eth0")

	nodes := []*bgpNode{}
	var neighbors strings.Builder
	for i := range 2 {
		n := &bgpNode{ns: testnet.NewNetns(t, fmt.Sprintf("bn%d", i+1)), addr: fmt.Sprintf("%s%d", bgpSubnet, 11+i)}
		br.Plug(t, n.ns, "eth0")
		n.ns.Run(t, "ip", "addr", "add", n.addr+"/24", "dev", "eth0")
		n.ns.Run(t, "ip", "addr", "add", bgpVIP+"/32", "dev", "lo")
		n.backend = testnet.ServeNamed(t, n.ns, fmt.Sprintf("node%d", i+1), []string{"127.0.0.1:7000"}, nil)
		fmt.Fprintf(&neighbors, " neighbor %s remote-as 65001\n", n.addr)
		nodes = append(nodes, n)
	}
	startFRR(t, rt, fmt.Sprintf(`hostname %s
log stdout
router bgp 65000
 bgp router-id %s1
 no bgp ebgp-requires-policy
 timers bgp 1 3
%s address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
`, rt.Name, bgpSubnet, neighbors.String()))

	for _, n := range nodes {
		conf := fmt.Sprintf(`admin:
  listen: "127.0.0.1:9901"
pools:
  - name: app
    backends:
      - {name: local, address: "127.0.0.1:7000"}
    health: {type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1}
l4:
  services:
    - {name: echo, listen: "%s:80", pool: app}
  bgp:
    asn: 65001
    router_id: %s
    peers:
      - {address: "%s1", asn: 65000}
    lameduck: 3s
`, bgpVIP, n.addr, bgpSubnet)
		path := filepath.Join(t.TempDir(), "strata.yaml")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		n.conf = path
		var logs bytes.Buffer
		n.logs = &lockedWriter{w: &logs}
		n.cmd = n.ns.Cmd(strataBin, "run", "-c", path)
		n.cmd.Stderr = n.logs
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			n.cmd.Process.Kill()
			n.cmd.Wait()
			if t.Failed() {
				t.Logf("strata log of %s:\n%s", n.ns.Name, logText(n.logs))
			}
		})
	}
	both := []string{nodes[0].addr, nodes[1].addr}
	waitHops := func(d time.Duration, what string, want []string) time.Duration {
		t.Helper()
		start := time.Now()
		eventually(t, d, what, func() bool { return slices.Equal(vipNextHops(t, rt), want) })
		return time.Since(start)
	}
	waitHops(20*time.Second, "a route to the VIP through both nodes", both)
	metrics := string(nodes[0].ns.Run(t, "curl", "-sS", "--max-time", "3", "http://127.0.0.1:9901/metrics"))
	for _, want := range []string{
		`strata_l4_bgp_session_established{peer="` + bgpSubnet + `1",state="established"} 1`,
		`strata_l4_bgp_announced{prefix="` + bgpVIP + `/32"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var st struct {
		Enabled   bool
		Peers     []struct{ Address, State string }
		Announced []string
	}
	if err := json.Unmarshal([]byte(nodes[0].ns.Run(t, "curl", "-sS", "--max-time", "3", "http://127.0.0.1:9901/api/v1/l4/bgp")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || len(st.Peers) != 1 || st.Peers[0].Address != bgpSubnet+"1" || st.Peers[0].State != "established" || !slices.Equal(st.Announced, []string{bgpVIP + "/32"}) {
		t.Errorf("GET /api/v1/l4/bgp = %+v, want one established peer and the VIP announced", st)
	}

	// A node whose last backend fails withdraws the VIP.
	nodes[0].backend.Close("127.0.0.1:7000")
	took := waitHops(5*time.Second, "node 1 to leave the route when its backend fails", []string{nodes[1].addr})
	t.Logf("the failed node's next hop left the router's route in %v", took.Round(10*time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("withdrawing after the backend failed took %v, want within 2s", took)
	}
	// And announces it again once the backend is back.
	nodes[0].backend = testnet.ServeNamed(t, nodes[0].ns, "node1", []string{"127.0.0.1:7000"}, nil)
	waitHops(5*time.Second, "node 1 to come back to the route", both)

	// SIGTERM: the node withdraws first, and serves through its lameduck
	// time while the router no longer sends it anything.
	stopping := nodes[1]
	stopping.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- stopping.cmd.Wait() }()
	waitHops(2*time.Second, "node 2 to leave the route at SIGTERM", []string{nodes[0].addr})
	var greeting string
	if err := stopping.ns.Do(func() error {
		c, err := net.DialTimeout("tcp", bgpVIP+":80", time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		greeting, err = testnet.ReadName(c)
		return err
	}); err != nil {
		t.Fatalf("node 2 stopped serving before its lameduck time was over: %v", err)
	}
	if greeting != "node2" {
		t.Errorf("node 2 answered %q during lameduck, want node2", greeting)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("node 2 exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("node 2 did not exit within 15s of SIGTERM")
	}
	if hops := vipNextHops(t, rt); !slices.Equal(hops, []string{nodes[0].addr}) {
		t.Errorf("after node 2 stopped the route's next hops are %v, want only node 1", hops)
	}

	// A reload that moves node 1's service to another VIP withdraws the
	// old one and announces the new.
	const vip2 = "10.252.9.2"
	nodes[0].ns.Run(t, "ip", "addr", "add", vip2+"/32", "dev", "lo")
	b, err := os.ReadFile(nodes[0].conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nodes[0].conf, bytes.Replace(b, []byte(bgpVIP+":80"), []byte(vip2+":80"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	nodes[0].cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, "the reload to move the route to the new VIP", func() bool {
		return len(vipNextHops(t, rt)) == 0 && slices.Equal(nextHops(t, rt, vip2), []string{nodes[0].addr})
	})

	// A node cut off without a word (no FIN, no Cease: its link goes
	// down) leaves when the router's hold time, 3s, runs out.
	nodes[0].ns.Run(t, "ip", "link", "set", "eth0", "down")
	start := time.Now()
	eventually(t, 10*time.Second, "the cut-off node's route to leave", func() bool { return len(nextHops(t, rt, vip2)) == 0 })
	took = time.Since(start)
	t.Logf("a cut-off node's route left the router in %v", took.Round(10*time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("a cut-off node's route took %v to leave, want within the 3s hold time and a little", took)
	}
}
