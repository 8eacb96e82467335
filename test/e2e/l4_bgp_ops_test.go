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

// The operators' network of TestL4BGPOps: a router running FRR and two
// l4 nodes, a primary and a backup, on one bridge. Unlike
// TestL4BGPCluster no one puts the VIP on the nodes' lo: strata does.
const (
	opsSubnet = "10.251.0."
	opsVIP    = "10.251.9.1"
)

// opsNode is one strata l4 node of the ops test.
type opsNode struct {
	name    string
	ns      *testnet.Netns
	addr    string
	conf    string
	backend *testnet.NamedServer
	cmd     *exec.Cmd
	logs    *lockedWriter
	exited  chan error
}

func (n *opsNode) start(t *testing.T) {
	t.Helper()
	var logs bytes.Buffer
	n.logs = &lockedWriter{w: &logs}
	n.cmd = n.ns.Cmd(strataBin, "run", "-c", n.conf)
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan error, 1)
	cmd := n.cmd
	go func() { n.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("strata log of %s:\n%s", n.name, logText(n.logs))
		}
	})
}

// admin runs curl against the node's admin listener, in its namespace.
func (n *opsNode) admin(t *testing.T, args ...string) string {
	t.Helper()
	return n.ns.Run(t, append([]string{"curl", "-sS", "--max-time", "3"}, args...)...)
}

// loAddrs returns lo's addresses in the node's namespace, one line each.
func (n *opsNode) loAddrs(t *testing.T) string {
	t.Helper()
	return n.ns.Run(t, "ip", "-o", "addr", "show", "dev", "lo")
}

// dialVIP connects to the VIP from inside the node's own namespace and
// returns the backend's greeting.
func (n *opsNode) dialVIP(t *testing.T) string {
	t.Helper()
	var greeting string
	if err := n.ns.Do(func() error {
		c, err := net.DialTimeout("tcp", opsVIP+":80", time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		greeting, err = testnet.ReadName(c)
		return err
	}); err != nil {
		t.Fatalf("connecting to the VIP on %s: %v", n.name, err)
	}
	return greeting
}

// TestL4BGPOps: the operator's side of a BGP cluster, against FRR. A
// primary and a backup node announce one VIP, the backup with a
// prepended AS path, over a TCP MD5 session for the backup: the router
// installs the primary only and a client behind it is served by the
// primary, then by the backup when the primary's backend fails, and by
// the primary again when it returns. strata puts the VIP on lo
// itself and takes it off at exit. `strata ctl drain-node` withdraws the
// primary while it still serves, the admin API undrains it, and BGP's
// state is in `strata ctl bgp`, /api/v1/status and /metrics. A reload
// that drops the backup's prepend makes both nodes equal: one ECMP route.
func TestL4BGPOps(t *testing.T) {
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	testnet.NeedTool(t, "curl", "curl")
	testnet.NeedTool(t, "/usr/lib/frr/bgpd", "frr")
	testnet.NeedTool(t, "/usr/lib/frr/zebra", "frr")
	testnet.NeedTool(t, "vtysh", "frr")
	chromium := testnet.NeedTool(t, "chromium", "chromium")
	br := testnet.NewBridge(t, "osw")
	rt := testnet.NewNetns(t, "ort")
	br.Plug(t, rt, "eth0")
	rt.Run(t, "ip", "addr", "add", opsSubnet+"1/24", "dev", "eth0")
	// A client behind the router: its connections to the VIP go where
	// the router's route sends them.
	client := testnet.NewNetns(t, "ocl")
	testnet.Link(t, rt, "cl0", client, "eth0")
	rt.Run(t, "ip", "addr", "add", "10.251.100.1/24", "dev", "cl0")
	rt.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	client.Run(t, "ip", "addr", "add", "10.251.100.2/24", "dev", "eth0")
	client.Run(t, "ip", "route", "add", "default", "via", "10.251.100.1")

	const md5 = "s3cret-md5-pw"
	pwFile := filepath.Join(t.TempDir(), "bgp-password")
	if err := os.WriteFile(pwFile, []byte(md5+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	primary := &opsNode{name: "primary", addr: opsSubnet + "11"}
	backup := &opsNode{name: "backup", addr: opsSubnet + "12"}
	nodes := []*opsNode{primary, backup}
	for i, n := range nodes {
		n.ns = testnet.NewNetns(t, fmt.Sprintf("on%d", i+1))
		br.Plug(t, n.ns, "eth0")
		n.ns.Run(t, "ip", "addr", "add", n.addr+"/24", "dev", "eth0")
		n.ns.Run(t, "ip", "route", "add", "default", "via", opsSubnet+"1")
		n.backend = testnet.ServeNamed(t, n.ns, n.name, []string{"127.0.0.1:7000"}, nil)
	}
	startFRR(t, rt, fmt.Sprintf(`hostname %s
log stdout
router bgp 65000
 bgp router-id %s1
 no bgp ebgp-requires-policy
 timers bgp 1 3
 neighbor %s remote-as 65001
 neighbor %s remote-as 65001
 neighbor %s password %s
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
`, rt.Name, opsSubnet, primary.addr, backup.addr, backup.addr, md5))

	for _, n := range nodes {
		extra := ""
		peer := fmt.Sprintf(`{address: "%s1", asn: 65000}`, opsSubnet)
		if n == backup {
			extra = "    as_path_prepend: 2\n    communities: [\"65001:200\"]\n"
			peer = fmt.Sprintf(`{address: "%s1", asn: 65000, password_file: %q}`, opsSubnet, pwFile)
		}
		conf := fmt.Sprintf(`admin:
  listen: "127.0.0.1:9901"
pools:
  - name: app
    backends:
      - {name: local, address: "127.0.0.1:7000"}
    health: {type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1}
l4:
  services:
    - {name: echo, listen: "%s:80", pool: app, scheduler: mh}
  bgp:
    asn: 65001
    router_id: %s
    peers:
      - %s
    lameduck: 1s
%s`, opsVIP, n.addr, peer, extra)
		n.conf = filepath.Join(t.TempDir(), "strata.yaml")
		if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		n.start(t)
	}
	hops := func() []string { return nextHops(t, rt, opsVIP) }
	waitHops := func(d time.Duration, what string, want ...string) time.Duration {
		t.Helper()
		slices.Sort(want)
		start := time.Now()
		eventually(t, d, what, func() bool { return slices.Equal(hops(), want) })
		return time.Since(start)
	}
	// served asks the VIP from the client three times and returns the
	// names of the nodes that answered, sorted and without repeats.
	served := func() []string {
		var names []string
		for range 3 {
			var g string
			if err := client.Do(func() error {
				c, err := net.DialTimeout("tcp", opsVIP+":80", time.Second)
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Second))
				g, err = testnet.ReadName(c)
				return err
			}); err != nil {
				t.Fatalf("the client's connection to the VIP: %v", err)
			}
			if !slices.Contains(names, g) {
				names = append(names, g)
			}
		}
		slices.Sort(names)
		return names
	}
	// bgpPaths is how many paths to the VIP the router's BGP table has.
	bgpPaths := func() int {
		var r struct{ Paths []json.RawMessage }
		out := rt.Run(t, "vtysh", "-N", rt.Name, "-c", "show ip bgp "+opsVIP+"/32 json")
		// vtysh first complains, on the same stream, that this FRR
		// instance has no vtysh.conf under /etc/frr.
		if i := strings.IndexByte(out, '{'); i > 0 {
			out = out[i:]
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("show ip bgp: %v: %s", err, out)
		}
		return len(r.Paths)
	}

	// Both sessions come up, the backup's with TCP MD5: FRR drops every
	// segment of that session that lacks the right signature. The
	// router knows both paths and installs the primary's only.
	waitHops(20*time.Second, "a route to the VIP through the primary", primary.addr)
	eventually(t, 10*time.Second, "the router to hold the backup's path too", func() bool { return bgpPaths() == 2 })
	if got := hops(); !slices.Equal(got, []string{primary.addr}) {
		t.Fatalf("with the backup's path known the route is via %v, want the primary only", got)
	}
	for _, n := range nodes {
		if lo := n.loAddrs(t); !strings.Contains(lo, opsVIP+"/32") || !strings.Contains(lo, "lo:strata") {
			t.Errorf("%s: lo has no VIP that strata put there:\n%s", n.name, lo)
		}
	}
	if got := served(); !slices.Equal(got, []string{"primary"}) {
		t.Errorf("the client was served by %v, want the primary only", got)
	}
	// The nodes have one pool, so their Maglev tables are the same, and
	// strata ctl services says so with one fingerprint.
	var fps []string
	for _, n := range nodes {
		out := n.ns.Run(t, strataBin, "ctl", "services", "--admin", "127.0.0.1:9901")
		m := regexp.MustCompile(`fingerprint ([0-9a-f]{16})`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("strata ctl services on %s shows no fingerprint:\n%s", n.name, out)
		}
		fps = append(fps, m[1])
	}
	if fps[0] != fps[1] {
		t.Errorf("the nodes' Maglev fingerprints differ: %v", fps)
	}

	// The primary's backend fails: it withdraws, and the router falls
	// back to the backup.
	primary.backend.Close("127.0.0.1:7000")
	took := waitHops(5*time.Second, "the router to fall back to the backup", backup.addr)
	t.Logf("failover to the backup: the route moved %v after the primary's backend stopped", took.Round(10*time.Millisecond))
	if got := served(); !slices.Equal(got, []string{"backup"}) {
		t.Errorf("after the failover the client was served by %v, want the backup only", got)
	}
	primary.backend = testnet.ServeNamed(t, primary.ns, "primary", []string{"127.0.0.1:7000"}, nil)
	took = waitHops(5*time.Second, "the route to return to the primary", primary.addr)
	t.Logf("failback: the route returned to the primary %v after its backend came back", took.Round(10*time.Millisecond))
	if got := served(); !slices.Equal(got, []string{"primary"}) {
		t.Errorf("after the failback the client was served by %v, want the primary only", got)
	}

	// The primary is killed: its session ends with the process, and the
	// router falls back to the backup. Restarted, the primary takes the
	// route back, finding on lo the VIP its killed run left there.
	primary.cmd.Process.Kill()
	<-primary.exited
	took = waitHops(5*time.Second, "the router to fall back to the backup when the primary is killed", backup.addr)
	t.Logf("kill: the route moved to the backup %v after the primary was killed", took.Round(10*time.Millisecond))
	if got := served(); !slices.Equal(got, []string{"backup"}) {
		t.Errorf("with the primary killed the client was served by %v, want the backup only", got)
	}
	primary.start(t)
	took = waitHops(10*time.Second, "the restarted primary to take the route back", primary.addr)
	t.Logf("restart: the route returned to the primary %v after it was started again", took.Round(10*time.Millisecond))

	// Drain the primary with strata ctl: the route moves to the backup,
	// and the primary still serves what reaches it.
	out := primary.ns.Run(t, strataBin, "ctl", "drain-node", "--admin", "127.0.0.1:9901")
	if !strings.Contains(out, "drained") {
		t.Errorf("strata ctl drain-node said %q", out)
	}
	took = waitHops(5*time.Second, "the drained primary to leave the route", backup.addr)
	t.Logf("drain: the route left the primary %v after strata ctl drain-node", took.Round(10*time.Millisecond))
	if g := primary.dialVIP(t); g != "primary" {
		t.Errorf("the drained primary answered %q, want primary", g)
	}
	ctl := primary.ns.Run(t, strataBin, "ctl", "bgp", "--admin", "127.0.0.1:9901")
	t.Logf("strata ctl bgp on the drained primary:\n%s", ctl)
	for _, want := range []string{"drained: yes", opsSubnet + "1", "established", "-> established", "session established", "announced: none", "on lo:     " + opsVIP} {
		if !strings.Contains(ctl, want) {
			t.Errorf("strata ctl bgp lacks %q:\n%s", want, ctl)
		}
	}
	var status struct {
		BGP *struct {
			Drained   bool
			Announced []string
			Peers     []struct {
				Address, State string
				UptimeSeconds  float64 `json:"uptime_seconds"`
			}
		}
	}
	if err := json.Unmarshal([]byte(primary.admin(t, "http://127.0.0.1:9901/api/v1/status")), &status); err != nil {
		t.Fatal(err)
	}
	if b := status.BGP; b == nil || !b.Drained || len(b.Announced) != 0 || len(b.Peers) != 1 || b.Peers[0].State != "established" || b.Peers[0].UptimeSeconds <= 0 {
		t.Errorf("/api/v1/status bgp = %+v, want drained, nothing announced, one established peer with an uptime", status.BGP)
	}
	metrics := primary.admin(t, "http://127.0.0.1:9901/metrics")
	for _, want := range []string{
		"strata_l4_bgp_drained 1",
		`strata_l4_bgp_session_established{peer="` + opsSubnet + `1",state="established"} 1`,
		`strata_l4_bgp_session_last_transition_timestamp_seconds{from="openconfirm",peer="` + opsSubnet + `1",to="established"}`,
		`strata_l4_bgp_session_flaps_total{peer="` + opsSubnet + `1"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The dashboard's BGP panel, as a browser renders it from
	// /api/v1/status: the peer established, the node drained, and the
	// button that undrains it.
	dom := primary.ns.Run(t, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=5000", "--dump-dom", "http://127.0.0.1:9901/")
	for _, want := range []string{`<section id="bgp" class="panel">`, `data-peer="` + opsSubnet + `1"`, "drained: nothing announced", "Undrain node", "session established"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the dashboard's BGP panel lacks %q:\n%s", want, dom)
		}
	}
	// A forwarded write is refused, as every admin write.
	if out := primary.admin(t, "-X", "POST", "-H", "X-Forwarded-For: 192.0.2.9", "http://127.0.0.1:9901/api/v1/l4/undrain"); !strings.Contains(out, "through a proxy") {
		t.Errorf("a forwarded undrain was not refused: %s", out)
	}
	// Undrain through the admin API.
	var st struct{ Drained bool }
	if err := json.Unmarshal([]byte(primary.admin(t, "-X", "POST", "http://127.0.0.1:9901/api/v1/l4/undrain")), &st); err != nil || st.Drained {
		t.Fatalf("POST /api/v1/l4/undrain: drained %v, %v", st.Drained, err)
	}
	waitHops(5*time.Second, "the undrained primary to take the route back", primary.addr)

	// A reload that drops the backup's prepend applies live, without a
	// new session: both paths are equal now, and the router spreads
	// over both.
	b, err := os.ReadFile(backup.conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backup.conf, bytes.Replace(b, []byte("as_path_prepend: 2"), []byte("as_path_prepend: 0"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	backup.cmd.Process.Signal(syscall.SIGHUP)
	waitHops(5*time.Second, "the reload to make both nodes equal", primary.addr, backup.addr)
	if m := backup.admin(t, "http://127.0.0.1:9901/metrics"); !strings.Contains(m, `strata_l4_bgp_session_flaps_total{peer="`+opsSubnet+`1"} 0`) {
		t.Errorf("the reload of the route attributes reset the backup's session")
	}

	// SIGTERM: the primary withdraws, serves out its lameduck, exits,
	// and takes the VIP it put on lo with it.
	primary.cmd.Process.Signal(syscall.SIGTERM)
	waitHops(2*time.Second, "the stopping primary to leave the route", backup.addr)
	select {
	case err := <-primary.exited:
		if err != nil {
			t.Fatalf("the primary exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the primary did not exit within 15s of SIGTERM")
	}
	if lo := primary.loAddrs(t); strings.Contains(lo, opsVIP) {
		t.Errorf("the VIP is still on the stopped primary's lo:\n%s", lo)
	}
}
