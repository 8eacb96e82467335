package demo

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed cluster.yaml
var clusterTemplates string

// The cluster demo's namespaces all start with NSPrefix, so that a run can
// find and remove what a crashed earlier run left behind, and an operator
// can see at a glance (`ip netns list`) what belongs to the demo.
const (
	NSPrefix = "strata-demo-"
	switchNS = NSPrefix + "sw"
	routerNS = NSPrefix + "router"
	clientNS = NSPrefix + "client"
	appsNS   = NSPrefix + "apps"

	// MarkerEnv is set in the environment of every process the cluster
	// demo starts (to the demo's pid), so that a test can tell whether
	// any of them outlived the demo.
	MarkerEnv = "STRATA_DEMO_CLUSTER"

	// ClusterVIP is the address the three l4 nodes announce.
	ClusterVIP = "10.77.9.1"

	lanPrefix  = "10.77.0."
	routerLAN  = lanPrefix + "1"
	routerEdge = "10.77.1.1" // the router's side of the client's link
	clientAddr = "10.77.1.2"
	appsAddr   = lanPrefix + "30"
	frrBin     = "/usr/lib/frr/"
)

// frrRun is FRR's run directory for the demo's router: -N gives the
// router's daemons (and vtysh -N) a directory of their own, so that the
// demo never meets a system FRR.
var frrRun = "/var/run/frr/" + routerNS

// ClusterOptions are `strata demo cluster`'s flags.
type ClusterOptions struct {
	Rate       float64       // requests per second of the client
	TrafficFor time.Duration // the client stops after this long
	TrafficMax int           // … or after this many requests
	Restart    time.Duration // restart a killed child after this long (0: never)

	Version        string
	Stdout, Stderr io.Writer
}

func parseClusterTemplates() *template.Template {
	return template.Must(template.New("cluster").Parse(clusterTemplates))
}

// clusterNode is one host of the cluster demo on its LAN.
type clusterNode struct {
	Name, NS string
	IP       string // its address on the LAN
	Addr     string // where it serves: IP:port
}

// clusterSetup is what the templates of cluster.yaml and the printed
// intro need.
type clusterSetup struct {
	RouterNS, RouterAddr string
	RouterASN, NodeASN   int
	LAN                  string
	VIP                  string
	Registry, Raft       string
	Service, Token       string
	L4, L7, Apps         []clusterNode
	Node                 clusterNode // the node a template is for
}

func newClusterSetup() clusterSetup {
	s := clusterSetup{
		RouterNS: routerNS, RouterAddr: routerLAN, RouterASN: 65000, NodeASN: 65001,
		LAN: lanPrefix + "0/24", VIP: ClusterVIP + ":80",
		Registry: appsAddr + ":8848", Raft: "127.0.0.1:7848", Service: "web", Token: "strata-demo-token",
	}
	for i := range 3 {
		ip := fmt.Sprintf("%s%d", lanPrefix, 11+i)
		s.L4 = append(s.L4, clusterNode{Name: fmt.Sprintf("l4-%d", i+1), NS: fmt.Sprintf("%sl4-%d", NSPrefix, i+1), IP: ip, Addr: ip})
	}
	for i := range 2 {
		ip := fmt.Sprintf("%s%d", lanPrefix, 21+i)
		name := "l7-" + string(rune('a'+i))
		s.L7 = append(s.L7, clusterNode{Name: name, NS: NSPrefix + name, IP: ip, Addr: ip + ":8080"})
	}
	for i := range 6 {
		s.Apps = append(s.Apps, clusterNode{Name: fmt.Sprintf("app-%d", i+1), NS: appsNS, IP: appsAddr, Addr: fmt.Sprintf("%s:%d", appsAddr, 9001+i)})
	}
	return s
}

// namespaces lists every namespace of the demo, the switch first.
func (s clusterSetup) namespaces() []string {
	ns := []string{switchNS, routerNS, clientNS, appsNS}
	for _, n := range s.L4 {
		ns = append(ns, n.NS)
	}
	for _, n := range s.L7 {
		ns = append(ns, n.NS)
	}
	return ns
}

// RunCluster is `strata demo cluster`: the l4 cluster of docs/l4.md in
// network namespaces on this machine. A router runs FRR's zebra and bgpd
// with ECMP; three l4 nodes each run strata's l4 role, proxy the VIP to
// two l7 nodes and announce it to the router by BGP while they can serve
// it; the l7 nodes follow a registry that six app instances join; and a
// client namespace sends a small, bounded stream of requests to the VIP
// and counts, per l4 node, who carried them. Every process is this binary
// (or FRR) started under `ip netns exec`, so `kill PID` of a node shows
// what the router does when a node goes.
//
// It needs root and FRR, and says so when either is missing. It removes
// what a crashed earlier run left (namespaces named NSPrefix*, the
// processes in them) before it starts, and everything it made when it
// gets SIGINT or SIGTERM. It returns the exit status: 1 when it cannot
// run or the cluster does not come up, 0 after a signal.
func RunCluster(o ClusterOptions) int {
	if problems := clusterPrereqs(os.Geteuid(), frrBin); len(problems) > 0 {
		fmt.Fprintf(o.Stderr, "strata demo cluster cannot run here:\n")
		for _, p := range problems {
			fmt.Fprintf(o.Stderr, "  - %s\n", p)
		}
		return 1
	}
	d := &demo{stdout: o.Stdout, out: &lineWriter{w: o.Stderr}, restart: o.Restart, version: o.Version}
	d.log = slog.New(slog.NewTextHandler(d.out.prefixed("[cluster] "), &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Signals first: a Ctrl-C while the namespaces are being built is
	// acted on once they are, and still cleans everything up.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	os.Setenv(MarkerEnv, strconv.Itoa(os.Getpid()))

	c := &cluster{d: d, setup: newClusterSetup(), sigs: sigs}
	removeLeftovers(d.log, "left by an earlier run")
	defer func() {
		d.stopChildren()
		removeLeftovers(d.log, "")
		if c.dir != "" {
			os.RemoveAll(c.dir)
		}
		d.log.Info("stopped; every namespace and process of the demo is gone")
	}()
	return c.run(o)
}

// clusterPrereqs says what this machine lacks to run the cluster demo,
// for a process of user euid, with FRR's daemons in frrDir.
func clusterPrereqs(euid int, frrDir string) []string {
	var p []string
	if euid != 0 {
		p = append(p, "it needs root: it creates network namespaces, veth pairs and a bridge (run it with sudo)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		p = append(p, "ip(8) is not installed (Debian package iproute2)")
	}
	for _, f := range []string{"zebra", "bgpd"} {
		if _, err := os.Stat(frrDir + f); err != nil {
			p = append(p, fmt.Sprintf("FRR is not installed: %s%s is missing (Debian package frr: apt-get install frr); the demo's router runs FRR's zebra and bgpd", frrDir, f))
			break
		}
	}
	if _, err := user.Lookup("frr"); err == nil {
		return p
	}
	if len(p) == 0 {
		p = append(p, "FRR's user frr does not exist (Debian package frr creates it)")
	}
	return p
}

// removeLeftovers kills every process in a namespace named NSPrefix* and
// deletes the namespace, with the veth pairs and the bridge in it, and
// FRR's run directory of the demo. why, when set, is logged with each
// namespace removed.
func removeLeftovers(log *slog.Logger, why string) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], NSPrefix) {
			continue
		}
		ns := f[0]
		pids, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, p := range strings.Fields(string(pids)) {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err := exec.Command("ip", "netns", "del", ns).Run(); err != nil {
			log.Warn("removing a namespace", "netns", ns, "err", err)
			continue
		}
		if why != "" {
			log.Info("removed a namespace "+why, "netns", ns, "processes killed", len(strings.Fields(string(pids))))
		}
	}
	os.RemoveAll(frrRun)
}

type cluster struct {
	d     *demo
	setup clusterSetup
	sigs  chan os.Signal
	dir   string // the strata processes' config files
	tmpl  *template.Template

	router, client *child
	l4, l7         []*child
}

func (c *cluster) run(o ClusterOptions) int {
	start := time.Now()
	log := c.d.log
	c.tmpl = parseClusterTemplates()
	if err := c.buildNetwork(); err != nil {
		log.Error("building the network", "err", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "strata-demo-cluster")
	if err != nil {
		log.Error("config directory", "err", err)
		return 1
	}
	c.dir = dir
	self, err := os.Executable()
	if err != nil {
		log.Error("finding my own binary", "err", err)
		return 1
	}
	if err := c.startRouter(); err != nil {
		log.Error("starting the router", "err", err)
		return 1
	}
	if err := c.startNodes(self); err != nil {
		log.Error("starting the nodes", "err", err)
		return 1
	}

	ready := make(chan error, 1)
	go func() { ready <- c.waitRoute(len(c.setup.L4), 60*time.Second) }()
	select {
	case err := <-ready:
		if err != nil {
			log.Error("the cluster did not come up", "err", err)
			return 1
		}
	case sig := <-c.sigs:
		log.Info("stopping before the cluster was up", "signal", sig.String())
		return 0
	}
	c.printIntro(time.Since(start), o)

	nodes := make([]string, len(c.setup.L4))
	for i, n := range c.setup.L4 {
		nodes[i] = n.Name + "=" + n.IP
	}
	c.client = c.add(clientNS, "client", self, "demo", "cluster-client", "-url", "http://"+c.setup.VIP+"/",
		"-nodes", strings.Join(nodes, ","), "-rate", strconv.FormatFloat(o.Rate, 'g', -1, 64),
		"-for", o.TrafficFor.String(), "-max", strconv.Itoa(o.TrafficMax))
	if err := c.client.start(); err != nil {
		log.Error("starting the client", "err", err)
		return 1
	}
	sig := <-c.sigs
	log.Info("shutting down", "signal", sig.String())
	return 0
}

// ip runs ip(8) with args and returns its error with its output.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// buildNetwork makes the namespaces: a switch (a bridge) that the router,
// the l4 nodes, the l7 nodes and the apps' namespace plug into, and the
// client on a link of its own to the router, so that every packet from
// the client to the VIP crosses the router's ECMP route.
func (c *cluster) buildNetwork() error {
	s := c.setup
	for _, ns := range s.namespaces() {
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
		if err := ip("-n", ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	if err := ip("-n", switchNS, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := ip("-n", switchNS, "link", "set", "br0", "up"); err != nil {
		return err
	}
	port := 0
	plug := func(ns, addr string) error {
		port++
		p := fmt.Sprintf("p%d", port)
		for _, args := range [][]string{
			{"-n", switchNS, "link", "add", p, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"-n", switchNS, "link", "set", p, "master", "br0", "up"},
			{"-n", ns, "link", "set", "eth0", "up"},
			{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
		} {
			if err := ip(args...); err != nil {
				return err
			}
		}
		if ns == routerNS {
			return nil
		}
		// Answers to the client go back through the router.
		return ip("-n", ns, "route", "add", "default", "via", routerLAN)
	}
	if err := plug(routerNS, routerLAN); err != nil {
		return err
	}
	hosts := append(append([]clusterNode{}, s.L4...), s.L7...)
	hosts = append(hosts, clusterNode{NS: appsNS, IP: appsAddr})
	for _, h := range hosts {
		if err := plug(h.NS, h.IP); err != nil {
			return err
		}
	}
	// No VIP on the l4 nodes' lo here: strata puts it there itself
	// (l4.bgp.vip_on_lo, on by default).
	for _, args := range [][]string{
		{"-n", routerNS, "link", "add", "client", "type", "veth", "peer", "name", "eth0", "netns", clientNS},
		{"-n", routerNS, "link", "set", "client", "up"},
		{"-n", routerNS, "addr", "add", routerEdge + "/24", "dev", "client"},
		{"-n", clientNS, "link", "set", "eth0", "up"},
		{"-n", clientNS, "addr", "add", clientAddr + "/24", "dev", "eth0"},
		{"-n", clientNS, "route", "add", "default", "via", routerEdge},
	} {
		if err := ip(args...); err != nil {
			return err
		}
	}
	// The router forwards, and hashes a flow's addresses and ports (policy
	// 1, layer 4) to pick the next hop, so that one client's connections
	// spread over the nodes; the default (policy 0) hashes the addresses
	// only and would send all of them to one node.
	out, err := exec.Command("ip", "netns", "exec", routerNS, "sysctl", "-qw",
		"net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1").CombinedOutput()
	if err != nil {
		return fmt.Errorf("sysctl in %s: %v: %s", routerNS, err, bytes.TrimSpace(out))
	}
	return nil
}

// add makes a child process that runs args in namespace ns.
func (c *cluster) add(ns, name string, args ...string) *child {
	ch := &child{d: c.d, name: name, bin: "ip", args: append([]string{"netns", "exec", ns}, args...)}
	c.d.mu.Lock()
	c.d.children = append(c.d.children, ch)
	c.d.mu.Unlock()
	return ch
}

// startRouter writes FRR's configs into the demo's own run directory,
// owned by FRR's user as its daemons drop to it, and starts zebra, then
// bgpd once zebra's socket is there (bgpd installs its routes through it).
func (c *cluster) startRouter() error {
	if err := os.MkdirAll(frrRun, 0o755); err != nil {
		return err
	}
	var bgpd bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&bgpd, "frr", c.setup); err != nil {
		return err
	}
	for name, text := range map[string][]byte{
		"zebra.conf": []byte("hostname " + routerNS + "\n"),
		"bgpd.conf":  bgpd.Bytes(),
		"vtysh.conf": nil,
	} {
		if err := os.WriteFile(filepath.Join(frrRun, name), text, 0o640); err != nil {
			return err
		}
	}
	u, err := user.Lookup("frr")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.Walk(frrRun, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
	if err != nil {
		return err
	}
	for _, daemon := range []string{"zebra", "bgpd"} {
		ch := c.add(routerNS, daemon, frrBin+daemon, "-N", routerNS,
			"-f", filepath.Join(frrRun, daemon+".conf"), "-i", filepath.Join(frrRun, daemon+".pid"),
			"--log", "stdout", "--log-level", "informational")
		if err := ch.start(); err != nil {
			return err
		}
		if daemon == "zebra" {
			c.router = ch
			if err := poll(10*time.Second, func() bool {
				_, err := os.Stat(filepath.Join(frrRun, "zserv.api"))
				return err == nil
			}); err != nil {
				return errors.New("zebra's socket did not appear within 10s")
			}
		}
	}
	return nil
}

// startNodes writes each strata process's config and starts the
// registry, the app instances, the l7 nodes and the l4 nodes.
func (c *cluster) startNodes(self string) error {
	s := c.setup
	conf := func(tmpl string, node clusterNode) (string, error) {
		s := c.setup
		s.Node = node
		var b bytes.Buffer
		if err := c.tmpl.ExecuteTemplate(&b, tmpl, s); err != nil {
			return "", err
		}
		path := filepath.Join(c.dir, tmpl+"-"+node.Name+".yaml")
		return path, os.WriteFile(path, b.Bytes(), 0o600)
	}
	path, err := conf("registry", clusterNode{Name: "registry"})
	if err != nil {
		return err
	}
	starts := []*child{c.add(appsNS, "registry", self, "run", "-c", path)}
	for _, a := range s.Apps {
		zone := "zone-a"
		if len(starts) > 3 {
			zone = "zone-b"
		}
		ch := c.add(appsNS, a.Name, self, "demo", "app", "-name", a.Name, "-zone", zone, "-listen", a.Addr, "-registry", s.Registry, "-service", s.Service, "-token", s.Token)
		starts = append(starts, ch)
	}
	for _, n := range s.L7 {
		if path, err = conf("l7", n); err != nil {
			return err
		}
		ch := c.add(n.NS, n.Name, self, "run", "-c", path)
		c.l7 = append(c.l7, ch)
		starts = append(starts, ch)
	}
	for _, n := range s.L4 {
		if path, err = conf("l4", n); err != nil {
			return err
		}
		ch := c.add(n.NS, n.Name, self, "run", "-c", path)
		c.l4 = append(c.l4, ch)
		starts = append(starts, ch)
	}
	for _, ch := range starts {
		if err := ch.start(); err != nil {
			return fmt.Errorf("%s: %w", ch.name, err)
		}
	}
	return nil
}

var nextHopRE = regexp.MustCompile(`via (\S+)`)

// routeHops returns the next hops of the router's route to the VIP.
func routeHops() []string {
	out, _ := exec.Command("ip", "-n", routerNS, "route", "show", ClusterVIP+"/32").Output()
	var hops []string
	for _, m := range nextHopRE.FindAllStringSubmatch(string(out), -1) {
		hops = append(hops, m[1])
	}
	return hops
}

// waitRoute waits until the router's route to the VIP has n next hops:
// every l4 node is up, has an l7 node ready, and announced the VIP.
func (c *cluster) waitRoute(n int, limit time.Duration) error {
	if poll(limit, func() bool { return len(routeHops()) == n }) != nil {
		return fmt.Errorf("after %s the router's route to %s has next hops %v, want %d", limit, ClusterVIP, routeHops(), n)
	}
	return nil
}

// poll calls cond every 100ms until it holds or limit passes.
func poll(limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func (c *cluster) pid(ch *child) int {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return ch.pid
}

func (c *cluster) printIntro(took time.Duration, o ClusterOptions) {
	s := c.setup
	w := &bytes.Buffer{}
	fmt.Fprintf(w, "strata demo cluster: three l4 nodes announce one VIP by BGP, a router spreads flows over them by ECMP; up in %s.\n\n", took.Round(10*time.Millisecond))
	fmt.Fprintf(w, "  %-8s %-16s %-22s %s\n", "client", clientAddr, clientNS, "requests to the VIP, counted by the l4 node that carried them")
	fmt.Fprintf(w, "  %-8s %-16s %-22s %s\n", "router", routerLAN, routerNS, fmt.Sprintf("FRR zebra+bgpd, AS %d, maximum-paths 8, L4 hash (zebra pid %d)", s.RouterASN, c.pid(c.router)))
	fmt.Fprintf(w, "  %-8s %-16s %-22s %s\n", "VIP", s.VIP, "", fmt.Sprintf("announced by each l4 node (AS %d) while it can serve it", s.NodeASN))
	for i, n := range s.L4 {
		fmt.Fprintf(w, "  %-8s %-16s %-22s pid %d\n", n.Name, n.IP, n.NS, c.pid(c.l4[i]))
	}
	for i, n := range s.L7 {
		fmt.Fprintf(w, "  %-8s %-16s %-22s pid %d\n", n.Name, n.Addr, n.NS, c.pid(c.l7[i]))
	}
	fmt.Fprintf(w, "  %-8s %-16s %-22s %s\n", "apps", appsAddr+":9001-9006", appsNS, "six app instances and the registry ("+s.Registry+")")
	if o.TrafficMax > 0 && o.Rate > 0 {
		fmt.Fprintf(w, "\nTraffic: %g new connections a second from the client, for %s or %d requests; per-node counts in the log every 2s.\n", o.Rate, o.TrafficFor, o.TrafficMax)
	}
	vtysh := fmt.Sprintf("ip netns exec %[1]s vtysh -N %[1]s -c", routerNS)
	// The ctl commands name this binary as the shell would find it, or by
	// its path when "strata" on PATH is another one (or none: go run).
	strata := "strata"
	if self, err := os.Executable(); err == nil {
		if p, err := exec.LookPath("strata"); err != nil || !sameFile(p, self) {
			strata = self
		}
	}
	l4a, l4b, l4c := s.L4[0], s.L4[1], s.L4[2]
	fmt.Fprintf(w, `
Try:
  %[1]s 'show ip route %[2]s'      # one route, a next hop per l4 node
  %[1]s 'show bgp summary'
  ip netns exec %[3]s curl -s http://%[4]s/            # client → router (ECMP) → l4 → l7 → app
  ip netns exec %[5]s curl -s 127.0.0.1:9901/api/v1/l4/bgp   # a node's BGP sessions and announcements
  kill %[6]d        # SIGTERM %[7]s: it withdraws the VIP first, serves its 2s lameduck, then stops
  kill -9 %[8]d     # %[9]s dies: its kernel closes the BGP session, the router drops it at once
  kill -STOP %[10]d / kill -CONT %[10]d   # %[11]s hangs: out when the 3s hold time runs out; back some seconds after CONT
  ip netns exec %[12]s %[17]s ctl drain-node     # %[16]s withdraws the VIP but serves on; undrain-node announces it again
  ip netns exec %[12]s %[17]s ctl bgp            # its sessions, announcements, the VIP on lo
  ip netns exec %[13]s curl -s -X POST 127.0.0.1:9901/api/v1/pools/app/backends/%[14]s/drain   # drain an app instance on %[15]s
`, vtysh, ClusterVIP, clientNS, s.VIP, l4a.NS, c.pid(c.l4[0]), l4a.Name, c.pid(c.l4[1]), l4b.Name, c.pid(c.l4[2]), l4c.Name,
		l4c.NS, s.L7[0].NS, s.Apps[0].Addr, s.L7[0].Name, l4c.Name, strata)
	if c.d.restart > 0 {
		fmt.Fprintf(w, "A killed process is started again after %s.\n", c.d.restart)
	}
	fmt.Fprintf(w, "Press Ctrl-C to stop; every namespace, veth and process of the demo goes with it.\n")
	c.d.stdout.Write(w.Bytes())
}

// sameFile reports whether paths a and b name the same file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
