package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/strata-lb/strata/internal/testnet"
)

// The ECMP cluster's network. A router running FRR sits between a client
// (on a link of its own) and one segment holding three strata l4 nodes and
// three backends. Every node serves two VIPs: ecmpDR, whose services
// forward in the kernel (XDP, dr), and ecmpProxy, whose services the
// user-space proxy serves. The backends hold ecmpDR on their lo (DR
// sends them the client's packets unchanged) and answer the client
// through the router, never through a node.
const (
	ecmpSubnet = "10.254.0."  // router .1, nodes .11-.13, backends .21-.23
	ecmpClient = "10.254.1."  // router .1, client .2 and .3
	ecmpDR     = "10.254.9.1" // VIP of the dr services
	ecmpProxy  = "10.254.9.2" // VIP of the proxy services
	ecmpTunnel = "10.254.9.3" // VIP of the tunnel services
	// ecmpResilient is the client's address on a second link, to a
	// second router that sends the VIPs through a resilient next-hop
	// group. FRR 8.4's zebra cannot make resilient groups, so the test
	// makes that router's group itself and changes its members when a
	// node leaves or comes back, as such a router would on a withdrawal
	// or an announcement. It is a namespace of its own, without FRR:
	// zebra takes the kernel's next-hop objects in its namespace for its
	// own and tries to put a replaced group back.
	ecmpResSubnet = "10.254.2." // second router .1, client .2
	ecmpResilient = ecmpResSubnet + "2"
	// ecmpHashSeed fixes the router's multipath hash seed. The kernel
	// otherwise draws a random one per boot, and with it the spread of
	// 300 flows over three next hops is a binomial draw: one node lands
	// outside ±15% of its share in about one boot in seven. With the seed
	// and the source ports fixed the router hashes the same 300 flows the
	// same way on every run (which node gets which share depends on the
	// order of the next hops in FRR's route: which session came up first).
	ecmpHashSeed = "1"
	// ecmpLameduck is the nodes' l4.bgp.lameduck, the default: on a
	// loaded machine the router has taken over 1.3s to drop a withdrawn
	// route, and a node that stops before it has loses the flows the
	// router still sends it.
	ecmpLameduck = 2 * time.Second
)

type ecmpNode struct {
	name   string
	ns     *testnet.Netns
	addr   string
	conf   string
	admin  *http.Client
	logs   *lockedWriter
	cmd    *exec.Cmd
	exited chan error // receives the process's exit once
	starts int        // processes started so far
}

type ecmpBackend struct {
	name    string
	ns      *testnet.Netns
	held    atomic.Int32    // requests that asked to be held, so far
	release <-chan struct{} // answers the held requests when closed
}

type ecmpNet struct {
	t        *testing.T     // the test that owns the network and the processes
	rt       *testnet.Netns // runs FRR
	rr       *testnet.Netns // the resilient router
	client   *testnet.Netns
	nodes    []*ecmpNode
	backends []*ecmpBackend
	flowPort int           // source ports of flows taken so far
	release  chan struct{} // closed to answer the backends' held requests
}

// dialIn returns a DialContext that makes its sockets in ns.
func dialIn(ns *testnet.Netns, local net.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() (err error) {
			// A client's connect waits through SYN retransmissions
			// (1s, 2s, 4s …), as curl's and browsers' do.
			d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: local}
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

func newECMPNet(t *testing.T) *ecmpNet {
	t.Helper()
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	testnet.NeedTool(t, "/usr/lib/frr/bgpd", "frr")
	testnet.NeedTool(t, "/usr/lib/frr/zebra", "frr")
	n := &ecmpNet{t: t, release: make(chan struct{})}
	br := testnet.NewBridge(t, "msw")
	n.rt = testnet.NewNetns(t, "mrt")
	br.Plug(t, n.rt, "eth0")
	n.rt.AddAddrs(t, "eth0", ecmpSubnet+"1/24")
	n.client = testnet.NewNetns(t, "mcl")
	testnet.Link(t, n.rt, "eth1", n.client, "eth0")
	n.rt.AddAddrs(t, "eth1", ecmpClient+"1/24")
	n.client.AddAddrs(t, "eth0", ecmpClient+"2/24")
	n.client.Run(t, "ip", "route", "add", "default", "via", ecmpClient+"1")
	n.rr = testnet.NewNetns(t, "mrr")
	br.Plug(t, n.rr, "eth0")
	n.rr.AddAddrs(t, "eth0", ecmpSubnet+"2/24")
	testnet.Link(t, n.rr, "eth1", n.client, "eth1")
	n.rr.AddAddrs(t, "eth1", ecmpResSubnet+"1/24")
	n.client.AddAddrs(t, "eth1", ecmpResilient+"/24")
	n.client.Run(t, "ip", "rule", "add", "from", ecmpResilient, "lookup", "100", "pref", "100")
	n.client.Run(t, "ip", "route", "add", "default", "via", ecmpResSubnet+"1", "table", "100")
	// Policy 1 hashes the 5-tuple, so the flows of one client spread.
	for _, r := range []*testnet.Netns{n.rt, n.rr} {
		r.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1",
			"net.ipv4.fib_multipath_hash_seed="+ecmpHashSeed)
		clearFlowHash(t, r, "eth1")
	}

	for i := range 3 {
		b := &ecmpBackend{name: fmt.Sprintf("b%d", i+1), release: n.release}
		b.ns = br.Host(t, "mb"+b.name[1:], "eth0", fmt.Sprintf("%s%d/24", ecmpSubnet, 21+i))
		b.ns.AddAddrs(t, "lo", ecmpDR+"/32", ecmpTunnel+"/32")
		b.ns.Run(t, "ip", "route", "add", "default", "via", ecmpSubnet+"1")
		b.ns.Run(t, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
			"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0")
		b.serve(t)
		// The tunnel VIP's packets come in IP-in-IP: strata decap
		// takes the outer header off.
		dc := b.ns.Cmd(strataBin, "decap", "--dev", "eth0", "--xdp-mode", "generic")
		if err := dc.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dc.Process.Kill(); dc.Wait() })
		eventually(t, 10*time.Second, "strata decap to attach", func() bool {
			return strings.Contains(b.ns.Run(t, "ip", "link", "show", "eth0"), "xdpgeneric")
		})
		n.backends = append(n.backends, b)
	}

	var neighbors strings.Builder
	for i := range 3 {
		nd := &ecmpNode{name: fmt.Sprintf("node%d", i+1), addr: fmt.Sprintf("%s%d", ecmpSubnet, 11+i)}
		nd.ns = br.Host(t, fmt.Sprintf("mn%d", i+1), "eth0", nd.addr+"/24")
		nd.ns.Run(t, "ip", "route", "add", "default", "via", ecmpSubnet+"1")
		nd.ns.Run(t, "ip", "route", "add", ecmpResSubnet+"0/24", "via", ecmpSubnet+"2")
		nd.admin = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dialIn(nd.ns, nil), DisableKeepAlives: true}}
		nd.logs = &lockedWriter{w: &bytes.Buffer{}}
		nd.conf = filepath.Join(t.TempDir(), "strata.yaml")
		if err := os.WriteFile(nd.conf, []byte(ecmpConfig(nd.addr)), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&neighbors, " neighbor %s remote-as 65001\n", nd.addr)
		n.nodes = append(n.nodes, nd)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, nd := range n.nodes {
				t.Logf("strata log of %s:\n%s", nd.name, logText(nd.logs))
			}
		}
	})
	startFRR(t, n.rt, fmt.Sprintf(`hostname %s
log stdout
router bgp 65000
 bgp router-id %s1
 no bgp ebgp-requires-policy
 timers bgp 1 3
%s address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
`, n.rt.Name, ecmpSubnet, neighbors.String()))
	for _, nd := range n.nodes {
		n.start(t, nd)
	}
	n.waitHops(t, 30*time.Second, "the router's routes through all three nodes", n.nodes...)
	return n
}

// clearFlowHash makes the router hash each packet's own 5-tuple, as a
// router does that takes the packet off a wire. A packet that crosses a
// veth keeps the hash its sender's socket gave it (sk_txhash: random per
// connection, and drawn again after a retransmission timeout), and Linux's
// multipath routing takes that hash, when a packet has one, instead of
// hashing the 5-tuple: the spread would be a new random draw on every run
// whatever the seed, and a flow could move to another next hop after a
// timeout. A two-instruction tc program on the router's client-facing port
// forgets the hash.
func clearFlowHash(t *testing.T, ns *testnet.Netns, dev string) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.FnSetHashInvalid.Call(), // R1 holds the packet at entry
			asm.Mov.Imm(asm.R0, 0),      // TCX_PASS
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("loading the hash-clearing program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	var l link.Link
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
		return err
	}); err != nil {
		t.Fatalf("attaching the hash-clearing program to %s: %v", dev, err)
	}
	t.Cleanup(func() { l.Close() })
}

// routerSpread asks the router where it sends a TCP connection from the
// client's first address and each of ports to vip:80, and counts the
// connections per next hop.
func (n *ecmpNet) routerSpread(t *testing.T, vip string, ports []int) map[string]int {
	t.Helper()
	var batch strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&batch, "route get %s from %s2 iif eth1 sport %d dport 80 ipproto tcp\n", vip, ecmpClient, p)
	}
	cmd := n.rt.Cmd("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ip route get: %v\n%s", err, out)
	}
	hist := map[string]int{}
	for _, m := range regexp.MustCompile(`via (\S+)`).FindAllStringSubmatch(string(out), -1) {
		hist[m[1]]++
	}
	return hist
}

// ecmpConfig is a node's config: the same pools and services on every
// node, so that every node builds the same Maglev tables.
func ecmpConfig(addr string) string {
	var web, echo strings.Builder
	for i := range 3 {
		fmt.Fprintf(&web, "      - {name: b%d, address: \"%s%d:80\"}\n", i+1, ecmpSubnet, 21+i)
		fmt.Fprintf(&echo, "      - {name: b%d, address: \"%s%d:7000\"}\n", i+1, ecmpSubnet, 21+i)
	}
	// fall: 2 keeps one slow check on a loaded machine from taking a
	// backend out of one node's table, which would make that node's
	// Maglev table differ from the others'.
	health := "    health: {type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 2}\n"
	// shutdown_timeout: a proxy node's connections cannot all close
	// cleanly once it has withdrawn: the client's last packets (its FIN)
	// go to another node, so the stopping node waits out this grace.
	return fmt.Sprintf(`admin:
  listen: "127.0.0.1:9901"
shutdown_timeout: 3s
pools:
  - name: web
    backends:
%s%s  - name: echo
    backends:
%s%sl4:
  xdp:
    devices: [eth0]
    mode: generic
  services:
    - {name: web-dr, listen: "%[5]s:80", pool: web, forward: dr}
    - {name: echo-dr, listen: "%[5]s:7000", pool: echo, forward: dr}
    - {name: web-tun, listen: "%[10]s:80", pool: web, forward: tunnel}
    - {name: echo-tun, listen: "%[10]s:7000", pool: echo, forward: tunnel}
    - {name: web-proxy, listen: "%[6]s:80", pool: web, scheduler: mh}
    - {name: echo-proxy, listen: "%[6]s:7000", pool: echo, scheduler: mh}
  bgp:
    asn: 65001
    router_id: %[7]s
    peers:
      - {address: "%[8]s1", asn: 65000}
    lameduck: %[9]s
`, web.String(), health, echo.String(), health, ecmpDR, ecmpProxy, addr, ecmpSubnet, ecmpLameduck, ecmpTunnel)
}

// serve starts the backend's servers: a named echo on :7000 and HTTP on
// :80 answering its name; a request for /?hold=1 is answered only once
// the test closes release, which keeps requests in flight for as long as
// the test wants.
func (b *ecmpBackend) serve(t *testing.T) {
	var echo, web net.Listener
	if err := b.ns.Do(func() (err error) {
		if echo, err = net.Listen("tcp", ":7000"); err != nil {
			return err
		}
		web, err = net.Listen("tcp", ":80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go testnet.ServeNamedEcho(echo, b.name)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") != "" {
			b.held.Add(1)
			select {
			case <-b.release:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, b.name)
	})}
	go srv.Serve(web)
	t.Cleanup(func() { echo.Close(); srv.Close() })
}

// start runs strata on nd. The process is the owning test's: it is
// killed when that test ends, whichever subtest started it.
func (n *ecmpNet) start(t *testing.T, nd *ecmpNode) {
	t.Helper()
	cmd := nd.ns.Cmd(strataBin, "run", "-c", nd.conf)
	cmd.Stderr = nd.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	nd.cmd, nd.exited = cmd, exited
	nd.starts++
	n.t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
}

// restart starts nd again and waits until it is back in both routes. It
// returns how long that took after the process started and after strata
// said it had started (data plane up, speaker running), and fails the
// test if the second is over 5s. The first is logged only: on a loaded
// machine a race-built binary can take seconds to get to its first line.
func (n *ecmpNet) restart(t *testing.T, nd *ecmpNode, what string) (fromExec, fromReady time.Duration) {
	t.Helper()
	n.start(t, nd)
	began := time.Now()
	n.waitHops(t, 30*time.Second, what+": the node back in both routes", n.nodes...)
	back := time.Now()
	var lines []string
	for _, l := range strings.Split(logText(nd.logs), "\n") {
		if strings.Contains(l, `msg="strata started"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != nd.starts {
		t.Fatalf("%s: %d processes started, %d said so", nd.name, nd.starts, len(lines))
	}
	m := regexp.MustCompile(`time=(\S+)`).FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("no time in %q", lines[len(lines)-1])
	}
	ready, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	fromExec, fromReady = back.Sub(began), back.Sub(ready)
	t.Logf("%s: %s was back in the routes %v after it was started, %v after it said it had started", what, nd.name,
		fromExec.Round(10*time.Millisecond), fromReady.Round(10*time.Millisecond))
	if fromReady > 5*time.Second {
		t.Errorf("%s: %s's route came back %v after it started, want within 5s", what, nd.name, fromReady)
	}
	return fromExec, fromReady
}

// waitExit waits for nd's process to end and returns how it ended.
func (nd *ecmpNode) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-nd.exited:
		nd.exited <- err // for the cleanup
		return err
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", nd.name, d)
		return nil
	}
}

// get decodes the JSON of GET path on nd's admin API into v.
func (nd *ecmpNode) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := nd.admin.Get("http://127.0.0.1:9901" + path)
	if err != nil {
		t.Fatalf("%s: GET %s: %v", nd.name, path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: GET %s: %v", nd.name, path, err)
	}
}

// post sends POST path to nd's admin API and fails the test unless it
// answers 200.
func (nd *ecmpNode) post(t *testing.T, path string) {
	t.Helper()
	resp, err := nd.admin.Post("http://127.0.0.1:9901"+path, "application/json", nil)
	if err != nil {
		t.Fatalf("%s: POST %s: %v", nd.name, path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: POST %s: %s %s", nd.name, path, resp.Status, body)
	}
}

// conns returns the clients (addr:port) of nd's connections to service,
// the kernel's flows for a dr service.
func (nd *ecmpNode) conns(t *testing.T, service string) map[string]bool {
	t.Helper()
	var cs []struct{ Service, Client string }
	nd.get(t, "/api/v1/l4/conns", &cs)
	out := map[string]bool{}
	for _, c := range cs {
		if c.Service == service {
			out[c.Client] = true
		}
	}
	return out
}

// flowsOf returns the count of new flows nd has seen for service.
func (nd *ecmpNode) flowsOf(t *testing.T, service string) uint64 {
	t.Helper()
	var svcs []struct {
		Name  string
		Stats struct {
			Conns uint64 `json:"conns"`
		} `json:"stats"`
	}
	nd.get(t, "/api/v1/l4/services", &svcs)
	for _, s := range svcs {
		if s.Name == service {
			return s.Stats.Conns
		}
	}
	t.Fatalf("%s has no service %s", nd.name, service)
	return 0
}

func addrsOf(nodes ...*ecmpNode) []string {
	var out []string
	for _, nd := range nodes {
		out = append(out, nd.addr)
	}
	slices.Sort(out)
	return out
}

// without returns the nodes other than skip.
func (n *ecmpNet) without(skip *ecmpNode) []*ecmpNode {
	var out []*ecmpNode
	for _, nd := range n.nodes {
		if nd != skip {
			out = append(out, nd)
		}
	}
	return out
}

// hops returns the next hops of the router's route to vip, sorted. It asks
// the kernel by netlink rather than running ip(8), so that polling costs
// little and the times measured are not a process start late.
func (n *ecmpNet) hops(t *testing.T, vip string) []string {
	t.Helper()
	var out []string
	if err := n.rt.Do(func() error {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{
			Dst: &net.IPNet{IP: net.ParseIP(vip).To4(), Mask: net.CIDRMask(32, 32)},
		}, netlink.RT_FILTER_DST)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Gw != nil {
				out = append(out, r.Gw.String())
			}
			for _, nh := range r.MultiPath {
				out = append(out, nh.Gw.String())
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("listing the router's routes: %v", err)
	}
	slices.Sort(out)
	return out
}

// waitHops waits until the router's routes to both VIPs go through
// exactly nodes, and returns how long that took.
func (n *ecmpNet) waitHops(t *testing.T, d time.Duration, what string, nodes ...*ecmpNode) time.Duration {
	t.Helper()
	start := time.Now()
	want := addrsOf(nodes...)
	eventually(t, d, what, func() bool {
		return slices.Equal(n.hops(t, ecmpDR), want) && slices.Equal(n.hops(t, ecmpProxy), want)
	})
	return time.Since(start)
}

// resilientGroup makes the resilient router's next-hop group hold the
// given nodes: the first call makes one next hop per node, the group and
// the routes to the VIPs; later calls replace the group's members, as the
// router would on a withdrawal or an announcement.
func (n *ecmpNet) resilientGroup(t *testing.T, nodes ...*ecmpNode) {
	t.Helper()
	const group = "200010"
	var ids []string
	for _, nd := range nodes {
		ids = append(ids, fmt.Sprintf("2000%02d", slices.Index(n.nodes, nd)+1))
	}
	if !strings.Contains(n.rr.Run(t, "ip", "nexthop", "list"), "id "+group+" ") {
		for i, nd := range n.nodes {
			n.rr.Run(t, "ip", "nexthop", "add", "id", fmt.Sprintf("2000%02d", i+1), "via", nd.addr, "dev", "eth0")
		}
		n.rr.Run(t, "ip", "nexthop", "add", "id", group, "group", strings.Join(ids, "/"), "type", "resilient", "buckets", "64")
		for _, vip := range []string{ecmpDR, ecmpProxy, ecmpTunnel} {
			n.rr.Run(t, "ip", "route", "add", vip+"/32", "nhid", group)
		}
		return
	}
	n.rr.Run(t, "ip", "nexthop", "replace", "id", group, "group", strings.Join(ids, "/"), "type", "resilient", "buckets", "64")
}

// get fetches http://vip/path from the client, from local (any port when
// nil), and returns the body: the backend's name.
func (n *ecmpNet) get(vip, path string, local *net.TCPAddr) (string, error) {
	c, err := dialIn(n.client, local)(context.Background(), "tcp", vip+":80")
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.0\r\nHost: vip\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "b") {
		return "", fmt.Errorf("status %d, body %q", resp.StatusCode, body)
	}
	return string(body), nil
}

// An ecmpFlow is one long-lived connection from the client to a VIP's
// echo service: it sends a line every 100ms and reads it back, until
// stopped or it breaks.
type ecmpFlow struct {
	kind    string // "dr", "tunnel", "proxy" or "resilient"
	service string
	local   string // the client's address:port, as the nodes list it
	backend string
	c       net.Conn
	rounds  atomic.Int64
	err     atomic.Pointer[error]
	done    chan struct{}
}

func (n *ecmpNet) dialFlow(t *testing.T, kind string) *ecmpFlow {
	t.Helper()
	f := &ecmpFlow{kind: kind, done: make(chan struct{})}
	vip, from := ecmpDR, ecmpClient+"2"
	f.service = "echo-dr"
	switch kind {
	case "tunnel":
		vip, f.service = ecmpTunnel, "echo-tun"
	case "proxy":
		vip, f.service = ecmpProxy, "echo-proxy"
	case "resilient":
		vip, from, f.service = ecmpProxy, ecmpResilient, "echo-proxy"
	}
	// Each flow has a source port of its own for the whole test: the
	// nodes' kernel flow tables remember flows after they end, and a
	// port used again would show one flow in two tables.
	n.flowPort++
	c, err := dialIn(n.client, &net.TCPAddr{IP: net.ParseIP(from), Port: 20000 + n.flowPort})(context.Background(), "tcp", vip+":7000")
	if err != nil {
		t.Fatalf("dialing a %s flow: %v", kind, err)
	}
	f.c, f.local = c, c.LocalAddr().String()
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	name, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("a %s flow got no greeting: %v", kind, err)
	}
	f.backend = strings.TrimSpace(name)
	go func() {
		defer close(f.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			msg := fmt.Sprintf("%s %d\n", f.local, i)
			// A flow that stalls longer than this counts as broken.
			c.SetDeadline(time.Now().Add(15 * time.Second))
			_, err := io.WriteString(c, msg)
			var got string
			if err == nil {
				got, err = r.ReadString('\n')
			}
			if err == nil && got != msg {
				err = fmt.Errorf("echoed %q, sent %q", got, msg)
			}
			if err != nil {
				f.err.Store(&err)
				return
			}
			f.rounds.Add(1)
			<-tick.C
		}
	}()
	return f
}

// broken returns the error that ended the flow, nil while it goes on.
func (f *ecmpFlow) broken() error {
	if e := f.err.Load(); e != nil {
		return *e
	}
	return nil
}

// flowSet is the flows of one event.
type flowSet struct {
	flows []*ecmpFlow
	node  map[*ecmpFlow]*ecmpNode // where each flow went before the event
}

// dialFlows opens per flows of each kind and finds the node each went
// through from the nodes' connection tables.
func (n *ecmpNet) dialFlows(t *testing.T, per int, kinds ...string) *flowSet {
	t.Helper()
	fs := &flowSet{node: map[*ecmpFlow]*ecmpNode{}}
	for _, k := range kinds {
		for range per {
			fs.flows = append(fs.flows, n.dialFlow(t, k))
		}
	}
	t.Cleanup(fs.close)
	fs.progress(t, 2, "every flow to make two round trips")
	tables := map[*ecmpNode]map[string]map[string]bool{}
	for _, nd := range n.nodes {
		if nd.cmd.ProcessState == nil {
			tables[nd] = map[string]map[string]bool{}
			for _, svc := range []string{"echo-dr", "echo-tun", "echo-proxy"} {
				tables[nd][svc] = nd.conns(t, svc)
			}
		}
	}
	for _, f := range fs.flows {
		for nd, tab := range tables {
			if tab[f.service][f.local] {
				if fs.node[f] != nil {
					t.Fatalf("the %s flow from %s is in the tables of %s and %s", f.kind, f.local, fs.node[f].name, nd.name)
				}
				fs.node[f] = nd
			}
		}
		if fs.node[f] == nil {
			t.Fatalf("the %s flow from %s is in no node's table", f.kind, f.local)
		}
	}
	return fs
}

// progress waits until every flow that is not broken has made k more
// round trips.
func (fs *flowSet) progress(t *testing.T, k int64, what string) {
	t.Helper()
	base := map[*ecmpFlow]int64{}
	for _, f := range fs.flows {
		base[f] = f.rounds.Load()
	}
	eventually(t, 30*time.Second, what, func() bool {
		for _, f := range fs.flows {
			if f.broken() == nil && f.rounds.Load() < base[f]+k {
				return false
			}
		}
		return true
	})
}

func (fs *flowSet) close() {
	for _, f := range fs.flows {
		f.c.Close()
		<-f.done
	}
}

// tally counts, per kind, the flows that went through node (the one the
// event was about) and those through the others, and how many of each
// broke; it logs them and returns the broken ones.
func (fs *flowSet) tally(t *testing.T, event string, node *ecmpNode) (own, others map[string][]*ecmpFlow) {
	t.Helper()
	own, others = map[string][]*ecmpFlow{}, map[string][]*ecmpFlow{}
	total := map[string][2]int{}
	for _, f := range fs.flows {
		tt := total[f.kind]
		if fs.node[f] == node {
			tt[0]++
		} else {
			tt[1]++
		}
		total[f.kind] = tt
		if f.broken() == nil {
			continue
		}
		if fs.node[f] == node {
			own[f.kind] = append(own[f.kind], f)
		} else {
			others[f.kind] = append(others[f.kind], f)
		}
	}
	for _, k := range []string{"dr", "tunnel", "proxy", "resilient"} {
		tt, ok := total[k]
		if !ok {
			continue
		}
		t.Logf("%s: %s flows: %d of %d through %s survived, %d of %d through the other nodes survived",
			event, k, tt[0]-len(own[k]), tt[0], node.name, tt[1]-len(others[k]), tt[1])
	}
	return own, others
}

// mustSurvive fails the test for each flow in broken.
func mustSurvive(t *testing.T, what string, broken []*ecmpFlow) {
	t.Helper()
	for _, f := range broken {
		t.Errorf("%s: the %s flow from %s (backend %s) broke: %v", what, f.kind, f.local, f.backend, f.broken())
	}
}

// TestL4ECMPCluster runs three strata l4 nodes behind an FRR router that
// spreads one VIP over them by ECMP, and checks what the cluster promises:
// an even spread, fast withdrawals, a node's route back soon after it
// restarts, long-lived flows through the surviving nodes unharmed when a
// node dies, drains or comes back (dr: every node picks the same backend
// and none holds TCP state; proxy: only with a router's resilient
// next-hop groups), and a rolling restart that fails no connection.
func TestL4ECMPCluster(t *testing.T) {
	n := newECMPNet(t)
	nodes := n.nodes
	victim := nodes[2]

	// strata puts the proxy's VIP on each node's lo, for its sockets, and
	// leaves the dr VIP off: XDP takes those packets before the stack.
	for _, nd := range nodes {
		lo := nd.ns.Run(t, "ip", "-o", "addr", "show", "dev", "lo")
		if !strings.Contains(lo, ecmpProxy+"/32") || strings.Contains(lo, ecmpDR+"/32") || strings.Contains(lo, ecmpTunnel+"/32") {
			t.Fatalf("%s's lo has\n%swant %s on it and neither %s nor %s", nd.name, lo, ecmpProxy, ecmpDR, ecmpTunnel)
		}
	}

	ok := t.Run("spread", func(t *testing.T) {
		// 300 connections from fixed source ports, ten at a time; each
		// node counts the new flows it forwarded.
		before := map[*ecmpNode]uint64{}
		for _, nd := range nodes {
			before[nd] = nd.flowsOf(t, "web-dr")
		}
		var wg sync.WaitGroup
		errs := make(chan error, 300)
		ports := make(chan int, 300)
		var all []int
		for p := range 300 {
			ports <- 31000 + p
			all = append(all, 31000+p)
		}
		close(ports)
		want := n.routerSpread(t, ecmpDR, all)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range ports {
					if _, err := n.get(ecmpDR, "/", &net.TCPAddr{IP: net.ParseIP(ecmpClient + "2"), Port: p}); err != nil {
						errs <- fmt.Errorf("from port %d: %w", p, err)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var counts []string
		for _, nd := range nodes {
			got := nd.flowsOf(t, "web-dr") - before[nd]
			counts = append(counts, fmt.Sprintf("%s %d", nd.name, got))
			if got < 85 || got > 115 {
				t.Errorf("%s forwarded %d of 300 connections, want 100 ± 15%%", nd.name, got)
			}
			// A node counts every SYN it forwards, so a connection
			// whose SYN was sent again counts twice.
			if w := uint64(want[nd.addr]); got < w || got > w+3 {
				t.Errorf("%s forwarded %d connections; the router's hash sends it %d", nd.name, got, w)
			}
		}
		t.Logf("300 connections spread over the nodes: %s (the router's ip route get: %v)", strings.Join(counts, ", "), want)
	})
	if !ok {
		return
	}

	ok = t.Run("backends fail", func(t *testing.T) {
		// The victim alone loses its backends: routes that refuse at
		// once, put in together, make its health checks fail.
		var add, del strings.Builder
		for i := range n.backends {
			fmt.Fprintf(&add, "route add prohibit %s%d/32\n", ecmpSubnet, 21+i)
			fmt.Fprintf(&del, "route del prohibit %s%d/32\n", ecmpSubnet, 21+i)
		}
		batch := func(cmds string) {
			cmd := victim.ns.Cmd("ip", "-batch", "-")
			cmd.Stdin = strings.NewReader(cmds)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ip -batch: %v\n%s", err, out)
			}
		}
		batch(add.String())
		start := time.Now()
		n.waitHops(t, 5*time.Second, "the node whose backends failed to leave both routes", n.without(victim)...)
		took := time.Since(start)
		t.Logf("a node whose backends all failed left the router's routes in %v", took.Round(10*time.Millisecond))
		if took > time.Second {
			t.Errorf("withdrawing after the backends failed took %v, want within 1s", took)
		}
		batch(del.String())
		took = n.waitHops(t, 5*time.Second, "the node to come back when its backends did", nodes...)
		t.Logf("and came back %v after its backends did", took.Round(10*time.Millisecond))
	})
	if !ok {
		return
	}

	ok = t.Run("SIGTERM", func(t *testing.T) {
		// Requests in flight through every node, dr and proxy, held by
		// the backends; the victim is told to stop while they are, and
		// they are answered once it has left the routes, during its
		// lameduck time.
		const per = 24
		type result struct {
			kind string
			port int
			err  error
		}
		results := make(chan result, 2*per)
		for i := range per {
			for j, vip := range []string{ecmpDR, ecmpProxy} {
				port := 32000 + 100*j + i
				go func() {
					_, err := n.get(vip, "/?hold=1", &net.TCPAddr{IP: net.ParseIP(ecmpClient + "2"), Port: port})
					results <- result{[]string{"dr", "proxy"}[j], port, err}
				}()
			}
		}
		eventually(t, 20*time.Second, "every held request to reach its backend", func() bool {
			sum := int32(0)
			for _, b := range n.backends {
				sum += b.held.Load()
			}
			return sum == 2*per
		})
		onVictim := map[string]bool{}
		for c := range victim.conns(t, "web-dr") {
			onVictim[c] = true
		}
		for c := range victim.conns(t, "web-proxy") {
			onVictim[c] = true
		}
		start := time.Now()
		victim.cmd.Process.Signal(syscall.SIGTERM)
		n.waitHops(t, 5*time.Second, "the stopping node to leave both routes", n.without(victim)...)
		took := time.Since(start)
		t.Logf("SIGTERM: the node left the router's routes in %v", took.Round(10*time.Millisecond))
		if took > time.Second {
			t.Errorf("withdrawing at SIGTERM took %v, want within 1s", took)
		}
		close(n.release)
		var drOwn, drOwnOK, proxyOwn, proxyOwnOK, proxyOthersLost int
		for range 2 * per {
			r := <-results
			mine := onVictim[fmt.Sprintf("%s2:%d", ecmpClient, r.port)]
			switch {
			case r.kind == "dr" && r.err != nil:
				t.Errorf("a dr request in flight from port %d (through the stopping node: %v) failed: %v", r.port, mine, r.err)
			case r.kind == "dr" && mine:
				drOwn++
				drOwnOK++
			case r.kind == "proxy" && mine:
				proxyOwn++
				if r.err == nil {
					proxyOwnOK++
				}
			case r.kind == "proxy" && r.err != nil:
				proxyOthersLost++
			}
		}
		t.Logf("SIGTERM: dr requests in flight through the stopping node: %d of %d finished; proxy: %d of %d finished, and %d through other nodes failed",
			drOwnOK, drOwn, proxyOwnOK, proxyOwn, proxyOthersLost)
		if drOwn == 0 {
			t.Errorf("no dr request was in flight through the stopping node")
		}
		if err := victim.waitExit(t, 15*time.Second); err != nil {
			t.Errorf("the node exited with %v after SIGTERM", err)
		}
		n.restart(t, victim, "restarted after SIGTERM")
	})
	if !ok {
		return
	}

	ok = t.Run("SIGSTOP", func(t *testing.T) {
		// A hung node keeps no session: the router's hold time (3s)
		// takes it out.
		start := time.Now()
		victim.cmd.Process.Signal(syscall.SIGSTOP)
		n.waitHops(t, 10*time.Second, "the hung node to leave both routes", n.without(victim)...)
		took := time.Since(start)
		t.Logf("SIGSTOP: the hung node left the router's routes in %v", took.Round(10*time.Millisecond))
		if took > 4*time.Second {
			t.Errorf("the hung node took %v to leave, want within the 3s hold time and a little", took)
		}
		victim.cmd.Process.Kill()
		victim.waitExit(t, 10*time.Second)
		n.restart(t, victim, "killed when hung and started again")
	})
	if !ok {
		return
	}

	// Long-lived flows across a node's death, return and drain.
	n.resilientGroup(t, nodes...)
	ok = t.Run("flows", func(t *testing.T) {
		const per = 45
		// A node dies.
		fs := n.dialFlows(t, per, "dr", "tunnel", "proxy", "resilient")
		victim.cmd.Process.Kill()
		victim.waitExit(t, 10*time.Second)
		n.waitHops(t, 10*time.Second, "the killed node to leave both routes", n.without(victim)...)
		n.resilientGroup(t, n.without(victim)...)
		fs.progress(t, 10, "the flows to go on after the node died")
		// The dead node's own dr flows live too: it drops their packets
		// (the dr VIP is not one of its addresses) until the router has
		// dropped its route, and the client's retransmissions then reach
		// a node that picks the same backend. A proxy's own flows
		// cannot live, and are only counted.
		own, others := fs.tally(t, "node killed", victim)
		mustSurvive(t, "node killed", others["dr"])
		mustSurvive(t, "node killed", others["tunnel"])
		mustSurvive(t, "node killed", others["resilient"])
		mustSurvive(t, "node killed", own["dr"])
		mustSurvive(t, "node killed", own["tunnel"])
		fs.close()

		// It comes back.
		fs = n.dialFlows(t, per, "dr", "tunnel", "proxy", "resilient")
		n.restart(t, victim, "kill and restore")
		n.resilientGroup(t, nodes...)
		fs.progress(t, 10, "the flows to go on after the node came back")
		own, others = fs.tally(t, "node back", victim)
		mustSurvive(t, "node back", others["dr"])
		mustSurvive(t, "node back", others["tunnel"])
		mustSurvive(t, "node back", others["resilient"])
		mustSurvive(t, "node back", own["dr"])
		mustSurvive(t, "node back", own["tunnel"])
		mustSurvive(t, "node back", own["resilient"])
		fs.close()

		// Another is drained: it withdraws its VIPs and serves on.
		drained := nodes[1]
		fs = n.dialFlows(t, per, "dr", "tunnel", "proxy", "resilient")
		// POST /api/v1/l4/drain is what strata ctl drain-node sends;
		// sent from here, the time measured is not a process start late.
		start := time.Now()
		drained.post(t, "/api/v1/l4/drain")
		n.waitHops(t, 10*time.Second, "the drained node to leave both routes", n.without(drained)...)
		t.Logf("drain-node: the node left the router's routes in %v", time.Since(start).Round(10*time.Millisecond))
		n.resilientGroup(t, n.without(drained)...)
		fs.progress(t, 10, "the flows to go on after the node was drained")
		own, others = fs.tally(t, "node drained", drained)
		mustSurvive(t, "node drained", others["dr"])
		mustSurvive(t, "node drained", others["tunnel"])
		mustSurvive(t, "node drained", others["resilient"])
		mustSurvive(t, "node drained", own["dr"])
		mustSurvive(t, "node drained", own["tunnel"])
		fs.close()
		start = time.Now()
		drained.post(t, "/api/v1/l4/undrain")
		n.waitHops(t, 10*time.Second, "the undrained node back in both routes", nodes...)
		t.Logf("undrain-node: the node was back in the router's routes in %v", time.Since(start).Round(10*time.Millisecond))
		n.resilientGroup(t, nodes...)
	})
	if !ok {
		return
	}

	t.Run("rolling restart", func(t *testing.T) {
		// Steady traffic: new connections to both VIPs, one after the
		// other from two clients each, and long-lived dr flows.
		fs := n.dialFlows(t, 30, "dr", "tunnel")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		kinds := []string{"dr", "tunnel", "proxy"}
		var sent, failed [3]atomic.Int64
		var firstErr [3]atomic.Pointer[error]
		for j, vip := range []string{ecmpDR, ecmpTunnel, ecmpProxy} {
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						sent[j].Add(1)
						if _, err := n.get(vip, "/", nil); err != nil {
							failed[j].Add(1)
							err = fmt.Errorf("at %s: %w", time.Now().Format("15:04:05.000"), err)
							firstErr[j].CompareAndSwap(nil, &err)
						}
					}
				}()
			}
		}
		for _, nd := range nodes {
			start := time.Now()
			nd.cmd.Process.Signal(syscall.SIGTERM)
			n.waitHops(t, 10*time.Second, nd.name+" to leave both routes", n.without(nd)...)
			withdrawn := time.Since(start)
			if err := nd.waitExit(t, 15*time.Second); err != nil {
				t.Errorf("%s exited with %v", nd.name, err)
			}
			t.Logf("rolling restart: %s withdrew in %v", nd.name, withdrawn.Round(10*time.Millisecond))
			n.restart(t, nd, "rolling restart")
		}
		fs.progress(t, 5, "the dr flows to go on after the rolling restart")
		close(stop)
		wg.Wait()
		for j, kind := range kinds {
			msg := ""
			if e := firstErr[j].Load(); e != nil {
				msg = fmt.Sprintf(" (first: %v)", *e)
			}
			t.Logf("rolling restart: %s: %d of %d new connections failed%s", kind, failed[j].Load(), sent[j].Load(), msg)
		}
		for j, kind := range kinds[:2] {
			if failed[j].Load() != 0 {
				t.Errorf("%d of %d new %s connections failed during the rolling restart", failed[j].Load(), sent[j].Load(), kind)
			}
		}
		var lost []*ecmpFlow
		for _, f := range fs.flows {
			if f.broken() != nil {
				lost = append(lost, f)
			}
		}
		t.Logf("rolling restart: %d of %d long-lived dr and tunnel flows survived", len(fs.flows)-len(lost), len(fs.flows))
		mustSurvive(t, "rolling restart", lost)
	})
}
