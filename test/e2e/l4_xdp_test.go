package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// xdpNet is a DR network for the strata binary: a client, a balancer and
// two real servers on one bridge. The VIP is on the balancer's eth0 (it
// answers ARP for it) and on each real's lo, whose ARP sysctls keep it
// quiet, as LVS DR wants.
type xdpNet struct {
	client, lb *testnet.Netns
	reals      map[string]*testnet.NamedServer
}

const (
	xdpVIP    = "10.251.0.100"
	xdpSubnet = "10.251.0."
)

func newXDPNet(t *testing.T) *xdpNet {
	t.Helper()
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	testnet.NeedTool(t, "curl", "curl")
	br := testnet.NewBridge(t, "esw")
	n := &xdpNet{reals: map[string]*testnet.NamedServer{}}
	n.client = br.Host(t, "ec", "eth0", xdpSubnet+"1/24")
	n.lb = br.Host(t, "elb", "eth0", xdpSubnet+"2/24", xdpVIP+"/32")
	for i, name := range []string{"r1", "r2"} {
		ns := br.Host(t, "e"+name, "eth0", fmt.Sprintf("%s%d/24", xdpSubnet, 11+i))
		ns.AddAddrs(t, "lo", xdpVIP+"/32")
		ns.Run(t, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
		n.reals[name] = testnet.ServeNamed(t, ns, name, []string{":7000"}, []string{":80"})
	}
	return n
}

// startStrata runs strata with args in the balancer's namespace and
// returns it with its log.
func (n *xdpNet) startStrata(t *testing.T, args ...string) (*exec.Cmd, *lockedWriter) {
	t.Helper()
	return startStrataIn(t, n.lb, args...)
}

// startStrataIn runs strata with args in ns, kills it when the test ends
// (logging what it wrote if the test failed), and returns it with its
// log.
func startStrataIn(t *testing.T, ns *testnet.Netns, args ...string) (*exec.Cmd, *lockedWriter) {
	t.Helper()
	var logs bytes.Buffer
	lw := &lockedWriter{w: &logs}
	cmd := ns.Cmd(append([]string{strataBin}, args...)...)
	cmd.Stderr = lw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("strata log:\n%s", logText(lw))
		}
	})
	return cmd, lw
}

// logText reads what a process wrote to lw so far.
func logText(lw *lockedWriter) string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.(*bytes.Buffer).String()
}

// curlVIP fetches http://VIP/ from the client.
func (n *xdpNet) curlVIP() (string, error) {
	out, err := n.client.Cmd("curl", "-sS", "--max-time", "3", "http://"+xdpVIP+"/").CombinedOutput()
	return string(out), err
}

// admin GETs a path of the admin API from inside the balancer.
func (n *xdpNet) admin(t *testing.T, path string) []byte {
	t.Helper()
	out, err := n.lb.Cmd("curl", "-sS", "--max-time", "3", "http://127.0.0.1:9901"+path).Output()
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return out
}

// stopAndCheckDetached stops strata with SIGTERM and checks that it took
// its XDP program off the device.
func (n *xdpNet) stopAndCheckDetached(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("strata exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("strata did not exit within 15s of SIGTERM")
	}
	if out := n.lb.Run(t, "ip", "link", "show", "eth0"); strings.Contains(out, "xdp") {
		t.Fatalf("the XDP program is still attached after shutdown:\n%s", out)
	}
}

// TestL4XDPOneLiner runs `strata l4 --forward dr` in the balancer and
// fetches through the VIP with curl.
func TestL4XDPOneLiner(t *testing.T) {
	n := newXDPNet(t)
	cmd, _ := n.startStrata(t, "l4", "--listen", xdpVIP+":80", "--to", xdpSubnet+"11:80", "--to", xdpSubnet+"12:80",
		"--forward", "dr", "--dev", "eth0", "--xdp-mode", "generic")
	seen := map[string]bool{}
	eventually(t, 10*time.Second, "both reals through the VIP", func() bool {
		out, err := n.curlVIP()
		if err == nil {
			seen[out] = true
		}
		return seen["r1"] && seen["r2"]
	})
	if out := n.lb.Run(t, "ip", "link", "show", "eth0"); !strings.Contains(out, "xdpgeneric") {
		t.Fatalf("no generic XDP program on the balancer's eth0:\n%s", out)
	}
	n.stopAndCheckDetached(t, cmd)
}

// TestL4XDPConfig runs a config with two dr services and active health
// checks: counters in strata ctl and /metrics, the kernel's connection
// table, and a real that fails its check leaving the table while the
// other's established connections go on.
func TestL4XDPConfig(t *testing.T) {
	n := newXDPNet(t)
	conf := fmt.Sprintf(`admin:
  listen: "127.0.0.1:9901"
pools:
  - name: web
    backends:
      - {name: r1, address: "%[1]s11:80"}
      - {name: r2, address: "%[1]s12:80"}
  - name: echo
    backends:
      - {name: r1, address: "%[1]s11:7000"}
      - {name: r2, address: "%[1]s12:7000"}
    health: {type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 2}
l4:
  xdp:
    devices: [eth0]
    mode: generic
  services:
    - {name: web, listen: "%[2]s:80", pool: web, forward: dr}
    - {name: echo, listen: "%[2]s:7000", pool: echo, forward: dr}
`, xdpSubnet, xdpVIP)
	path := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, logs := n.startStrata(t, "run", "-c", path)
	eventually(t, 10*time.Second, "curl through the VIP", func() bool {
		_, err := n.curlVIP()
		return err == nil
	})
	for i := 0; i < 10; i++ {
		if out, err := n.curlVIP(); err != nil || (out != "r1" && out != "r2") {
			t.Fatalf("curl through the VIP: %q, %v", out, err)
		}
	}

	// The admin API shows the kernel's counters: only client → server.
	var svcs []struct {
		Name    string
		Forward string
		Stats   struct {
			Conns    uint64 `json:"conns"`
			InPkts   uint64 `json:"in_pkts"`
			OutPkts  uint64 `json:"out_pkts"`
			OutBytes uint64 `json:"out_bytes"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(n.admin(t, "/api/v1/l4/services"), &svcs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range svcs {
		if s.Name != "web" {
			continue
		}
		found = true
		if s.Forward != "dr" || s.Stats.Conns < 10 || s.Stats.InPkts == 0 || s.Stats.OutPkts != 0 || s.Stats.OutBytes != 0 {
			t.Fatalf("service web: %+v, want forward dr, ≥10 flows, packets in and nothing out", s)
		}
	}
	if !found {
		t.Fatalf("no service web in %+v", svcs)
	}
	ctl := string(n.lb.Run(t, strataBin, "ctl", "services", "--admin", "127.0.0.1:9901"))
	if !strings.Contains(ctl, "TCP  "+xdpVIP+":80 mh dr") {
		t.Fatalf("strata ctl services does not show the dr service:\n%s", ctl)
	}
	conns := string(n.lb.Run(t, strataBin, "ctl", "conns", "--admin", "127.0.0.1:9901"))
	if !strings.Contains(conns, "XDP") || !strings.Contains(conns, xdpSubnet+"1:") {
		t.Fatalf("strata ctl conns does not show the kernel's flows from the client:\n%s", conns)
	}
	metrics := string(n.admin(t, "/metrics"))
	for _, want := range []string{`strata_l4_xdp_packets_total{backend="r1",service="web"}`, `strata_l4_xdp_events_total{event="passed"}`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics has no %s", want)
		}
	}

	// Established connections through both reals, then r1 stops
	// accepting: its check fails, it leaves the table, new connections
	// avoid it and r2's established ones go on.
	type conn struct {
		c    net.Conn
		r    *bufio.Reader
		real string
	}
	dial := func() conn {
		t.Helper()
		var c net.Conn
		if err := n.client.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", xdpVIP+":7000", 3*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		name, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return conn{c, r, strings.TrimSpace(name)}
	}
	var open []conn
	defer func() {
		for _, c := range open {
			c.c.Close()
		}
	}()
	for len(open) < 16 {
		open = append(open, dial())
	}
	n.reals["r1"].Close(":7000")
	// The pool marks r1 unhealthy, then the kernel's table is rebuilt
	// without it: wait for the second, which new connections follow.
	eventually(t, 10*time.Second, "r1 to fail its check and leave the kernel's table", func() bool {
		var st []struct {
			Name     string
			Backends []struct {
				Name    string
				Status  string
				InTable *bool `json:"in_table"`
			}
		}
		if err := json.Unmarshal(n.admin(t, "/api/v1/l4/services"), &st); err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			for _, b := range s.Backends {
				if s.Name == "echo" && b.Name == "r1" {
					return b.Status == "unhealthy" && b.InTable != nil && !*b.InTable
				}
			}
		}
		return false
	})
	for _, c := range open {
		if c.real != "r2" {
			continue
		}
		msg := "still here\n"
		if _, err := c.c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := c.r.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("an established connection through r2 broke when r1 failed: %q, %v", got, err)
		}
	}
	for i := 0; i < 20; i++ {
		c := dial()
		c.c.Close()
		if c.real != "r2" {
			t.Fatalf("a new connection went to %s after r1 failed its check", c.real)
		}
	}

	// A reload (SIGHUP) keeps the program, its connection table and its
	// counters: the same program stays attached, r2's connections go on,
	// and the counters do not start again from 0.
	progID := func() string {
		out := n.lb.Run(t, "ip", "-d", "link", "show", "eth0")
		i := strings.Index(out, "prog/xdp id ")
		if i < 0 {
			t.Fatalf("no XDP program on eth0:\n%s", out)
		}
		return strings.Fields(out[i+len("prog/xdp id "):])[0]
	}
	webConns := func() uint64 {
		if err := json.Unmarshal(n.admin(t, "/api/v1/l4/services"), &svcs); err != nil {
			t.Fatal(err)
		}
		for _, s := range svcs {
			if s.Name == "web" {
				return s.Stats.Conns
			}
		}
		t.Fatal("no service web")
		return 0
	}
	id, before := progID(), webConns()
	// A changed file, so that the reload applies it (an unchanged one is
	// skipped): r2 weighs twice r1 in web.
	conf = strings.Replace(conf, `{name: r2, address: "`+xdpSubnet+`12:80"}`, `{name: r2, address: "`+xdpSubnet+`12:80", weight: 2}`, 1)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the reload", func() bool { return strings.Contains(logText(logs), "config reloaded") })
	if got := progID(); got != id {
		t.Fatalf("the reload replaced the XDP program (id %s, then %s)", id, got)
	}
	if after := webConns(); after < before {
		t.Fatalf("the reload reset the kernel's counters: %d flows, then %d", before, after)
	}
	for _, c := range open {
		if c.real != "r2" {
			continue
		}
		msg := "after the reload\n"
		c.c.Write([]byte(msg))
		if got, err := c.r.ReadString('\n'); err != nil || got != msg {
			t.Fatalf("an established connection broke across the reload: %q, %v", got, err)
		}
	}
	n.stopAndCheckDetached(t, cmd)
}

// TestL4XDPTunnel runs `strata l4 --forward tunnel` on a balancer whose
// reals sit behind a router, each running `strata decap`, and fetches
// through the VIP with curl; the reals' replies go back through the
// router, never through the balancer.
func TestL4XDPTunnel(t *testing.T) {
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	testnet.NeedTool(t, "curl", "curl")
	const vip = "10.253.0.100"
	front, back := testnet.NewBridge(t, "etf"), testnet.NewBridge(t, "etb")
	router := testnet.NewNetns(t, "ert")
	front.Plug(t, router, "eth0")
	back.Plug(t, router, "eth1")
	router.AddAddrs(t, "eth0", "10.253.0.254/24")
	router.AddAddrs(t, "eth1", "10.253.1.254/24")
	router.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	client := front.Host(t, "etc", "eth0", "10.253.0.1/24")
	lb := front.Host(t, "etlb", "eth0", "10.253.0.2/24", vip+"/32")
	lb.Run(t, "ip", "route", "add", "10.253.1.0/24", "via", "10.253.0.254")
	type decap struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var decaps []decap
	for i, name := range []string{"r1", "r2"} {
		ns := back.Host(t, "et"+name, "eth0", fmt.Sprintf("10.253.1.%d/24", 11+i))
		ns.Run(t, "ip", "route", "add", "default", "via", "10.253.1.254")
		ns.AddAddrs(t, "lo", vip+"/32")
		ns.Run(t, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0")
		testnet.ServeNamed(t, ns, name, nil, []string{":80"})
		dc := ns.Cmd(strataBin, "decap", "--dev", "eth0", "--xdp-mode", "generic")
		out := &bytes.Buffer{}
		dc.Stdout = out
		if err := dc.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dc.Process.Kill(); dc.Wait() })
		eventually(t, 5*time.Second, "strata decap to attach", func() bool {
			return strings.Contains(ns.Run(t, "ip", "link", "show", "eth0"), "xdpgeneric")
		})
		decaps = append(decaps, decap{dc, out})
	}
	startStrataIn(t, lb, "l4", "--listen", vip+":80", "--to", "10.253.1.11:80", "--to", "10.253.1.12:80",
		"--forward", "tunnel", "--dev", "eth0")
	seen := map[string]bool{}
	eventually(t, 10*time.Second, "both reals through the tunnel", func() bool {
		out, err := client.Cmd("curl", "-sS", "--max-time", "3", "http://"+vip+"/").Output()
		if err == nil {
			seen[string(out)] = true
		}
		return seen["r1"] && seen["r2"]
	})
	// strata decap prints what it decapsulated when it stops.
	for _, d := range decaps {
		d.cmd.Process.Signal(syscall.SIGTERM)
		if err := d.cmd.Wait(); err != nil {
			t.Fatalf("strata decap exited with %v", err)
		}
		var n, passed int
		if _, err := fmt.Sscanf(d.out.String(), "decapsulated %d packets, passed %d", &n, &passed); err != nil || n == 0 {
			t.Fatalf("strata decap said %q, want a count of packets decapsulated", d.out.String())
		}
	}
}
