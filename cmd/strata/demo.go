package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/supervisor"
)

//go:embed demo.yaml
var demoTemplates string

// demoNode is one l7 node or app instance of the demo: a child process.
type demoNode struct {
	Name, Addr, Admin, Zone string
}

// demoSetup is everything the demo's configs and printed commands need.
type demoSetup struct {
	Admin, Registry, Raft, DNS, VIP string
	Zone, Service                   string
	L7                              []demoNode
	Apps                            []demoNode
	Node                            demoNode // the l7 node a template is for
}

// cmdDemo runs the whole chain on loopback: a registry, six app instances
// in two zones that register and beat, two l7 nodes following the
// registry, an l4 VIP in front of them, a dns name for the VIP, and a
// small, bounded stream of requests through it all. The l7 nodes and the
// app instances are child processes, so `kill PID` shows what the chain
// does when a hop dies.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "app" {
		return cmdDemoApp(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	adminAddr := fs.String("admin", "127.0.0.1:9901", "the edge process's admin listener and dashboard")
	regAddr := fs.String("registry", "127.0.0.1:8848", "the registry's HTTP address")
	raftAddr := fs.String("raft", "127.0.0.1:7848", "the registry's Raft address")
	dnsAddr := fs.String("dns", "127.0.0.1:8053", "the DNS server's address (UDP and TCP)")
	vip := fs.String("vip", "127.0.0.1:8000", "the l4 VIP")
	l7List := fs.String("l7", "127.0.0.1:8081,127.0.0.1:8082", "the two l7 nodes' listen addresses")
	l7Admin := fs.String("l7-admin", "127.0.0.1:9911,127.0.0.1:9912", "the two l7 nodes' admin listeners and dashboards")
	appList := fs.String("apps", "127.0.0.1:9001", "the six app instances' addresses: a list of six, or the first of six consecutive ports")
	zone := fs.String("zone", "demo.test", "the DNS zone; www.ZONE answers the VIP")
	rate := fs.Float64("rate", 5, "requests per second of the traffic generator")
	trafficFor := fs.Duration("traffic-for", time.Hour, "stop the traffic generator after this long")
	trafficMax := fs.Int("traffic-max", 20000, "stop the traffic generator after this many requests (0: no traffic)")
	restart := fs.Duration("restart", 15*time.Second, "restart a killed l7 node or app instance after this long (0: never)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	setup := demoSetup{Admin: *adminAddr, Registry: *regAddr, Raft: *raftAddr, DNS: *dnsAddr, VIP: *vip, Zone: *zone, Service: "web"}
	l7s, err := addrList(*l7List, 2)
	if err == nil {
		var admins []string
		if admins, err = addrList(*l7Admin, 2); err == nil {
			for i, a := range l7s {
				setup.L7 = append(setup.L7, demoNode{Name: "l7-" + string(rune('a'+i)), Addr: a, Admin: admins[i]})
			}
		}
	}
	if err == nil {
		var apps []string
		if apps, err = addrList(*appList, 6); err == nil {
			for i, a := range apps {
				z := "zone-a"
				if i >= 3 {
					z = "zone-b"
				}
				setup.Apps = append(setup.Apps, demoNode{Name: fmt.Sprintf("app-%d", i+1), Addr: a, Zone: z})
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	d := &demo{setup: setup, stdout: stdout, out: &lineWriter{w: stderr}, restart: *restart}
	d.log = newLogger(config.Log{Level: "info", Format: "text"}, d.out.prefixed("[edge] "))
	return d.run(trafficPlan{rate: *rate, for_: *trafficFor, max: *trafficMax})
}

// addrList reads a comma-separated list of n addresses, or one address
// that starts n consecutive ports.
func addrList(s string, n int) ([]string, error) {
	parts := strings.Split(s, ",")
	if len(parts) == 1 && n > 1 {
		host, port, err := net.SplitHostPort(parts[0])
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil || p < 1 || p+n-1 > 65535 {
			return nil, fmt.Errorf("%q is not host:port", s)
		}
		for i := 1; i < n; i++ {
			parts = append(parts, net.JoinHostPort(host, strconv.Itoa(p+i)))
		}
	}
	if len(parts) != n {
		return nil, fmt.Errorf("%q: want %d addresses, got %d", s, n, len(parts))
	}
	for _, p := range parts {
		if _, _, err := net.SplitHostPort(p); err != nil {
			return nil, fmt.Errorf("%q is not host:port", p)
		}
	}
	return parts, nil
}

type demo struct {
	setup   demoSetup
	stdout  io.Writer
	out     *lineWriter
	log     *slog.Logger
	restart time.Duration
	dir     string // the l7 nodes' config files

	mu       sync.Mutex
	stopping bool
	children []*child
}

func (d *demo) run(plan trafficPlan) int {
	start := time.Now()
	tmpl := template.Must(template.New("demo").Parse(demoTemplates))
	var edge bytes.Buffer
	if err := tmpl.ExecuteTemplate(&edge, "edge", d.setup); err != nil {
		fmt.Fprintf(d.out, "demo: %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "strata-demo")
	if err != nil {
		fmt.Fprintf(d.out, "demo: %v\n", err)
		return 1
	}
	d.dir = dir
	defer os.RemoveAll(dir)

	sup := supervisor.New(supervisor.Options{
		Source:  supervisor.Source{Name: "demo edge config", Data: edge.Bytes()},
		Logger:  d.log,
		Version: version,
	})
	if err := sup.Start(); err != nil {
		d.log.Error("start failed", "err", err)
		return 1
	}
	stopSup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sup.Shutdown(ctx)
	}

	self, err := os.Executable()
	if err != nil {
		d.log.Error("finding my own binary", "err", err)
		stopSup()
		return 1
	}
	for _, a := range d.setup.Apps {
		d.children = append(d.children, &child{d: d, name: a.Name, addr: a.Addr, zone: a.Zone, bin: self,
			args: []string{"demo", "app", "-name", a.Name, "-zone", a.Zone, "-listen", a.Addr, "-registry", d.setup.Registry, "-service", d.setup.Service}})
	}
	for _, n := range d.setup.L7 {
		s := d.setup
		s.Node = n
		var b bytes.Buffer
		if err := tmpl.ExecuteTemplate(&b, "l7", s); err != nil {
			d.log.Error("l7 config", "err", err)
			stopSup()
			return 1
		}
		path := filepath.Join(dir, n.Name+".yaml")
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			d.log.Error("l7 config", "err", err)
			stopSup()
			return 1
		}
		d.children = append(d.children, &child{d: d, name: n.Name, addr: n.Addr, admin: n.Admin, bin: self, args: []string{"run", "-c", path}})
	}
	for _, c := range d.children {
		if err := c.start(); err != nil {
			d.log.Error("starting a child", "name", c.name, "err", err)
			d.stopChildren()
			stopSup()
			return 1
		}
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	ready := make(chan error, 1)
	go func() { ready <- d.waitReady(sup, 15*time.Second) }()
	select {
	case err := <-ready:
		if err != nil {
			d.log.Error("the chain did not come up", "err", err)
			d.stopChildren()
			stopSup()
			return 1
		}
	case sig := <-sigs:
		d.log.Info("stopping before the chain was up", "signal", sig.String())
		d.stopChildren()
		stopSup()
		return 0
	}
	d.printIntro(time.Since(start), plan)
	d.log.Info("strata demo started", "version", version, "pid", os.Getpid(), "startup", time.Since(start).Round(time.Millisecond).String())

	ctx, stopTraffic := context.WithCancel(context.Background())
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		newTraffic(d.setup, plan, d.log).run(ctx)
	}()

	sig := <-sigs
	d.log.Info("shutting down", "signal", sig.String())
	stopTraffic()
	<-trafficDone
	d.stopChildren()
	stopSup()
	d.log.Info("stopped")
	return 0
}

// waitReady waits until every app instance is registered and healthy, both
// l7 nodes have all of them in their pools, and a request gets through the
// VIP, so the printed commands work the moment they are printed.
func (d *demo) waitReady(sup *supervisor.Supervisor, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	want := len(d.setup.Apps)
	check := func() string {
		for _, p := range sup.Pools() {
			if p.Name() == "app" && len(p.Snapshot().Ready) < want {
				return fmt.Sprintf("the registry lists %d of %d app instances", len(p.Snapshot().Ready), want)
			}
		}
		for _, n := range d.setup.L7 {
			if got := readyIn(hc, n.Admin, "app"); got < want {
				return fmt.Sprintf("l7 node %s has %d of %d app instances ready", n.Name, got, want)
			}
		}
		res, err := hc.Get("http://" + d.setup.VIP + "/")
		if err != nil {
			return "the VIP: " + err.Error()
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return "the VIP answers " + res.Status
		}
		return ""
	}
	for {
		why := check()
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New(why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readyIn asks an admin listener how many backends of pool are ready.
func readyIn(hc *http.Client, admin, pool string) int {
	res, err := hc.Get("http://" + admin + "/api/v1/status")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	var st struct {
		Pools []struct {
			Name  string `json:"name"`
			Ready int    `json:"ready"`
		} `json:"pools"`
	}
	if json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&st) != nil {
		return 0
	}
	for _, p := range st.Pools {
		if p.Name == pool {
			return p.Ready
		}
	}
	return 0
}

func (d *demo) printIntro(took time.Duration, plan trafficPlan) {
	s := d.setup
	w := &bytes.Buffer{}
	fmt.Fprintf(w, "strata demo: the whole chain on loopback, up in %s — dns → l4 → l7 → app, with a registry inside.\n\n", took.Round(10*time.Millisecond))
	fmt.Fprintf(w, "  %-9s %-22s %s\n", "dns", s.DNS, "www."+s.Zone+" answers the l4 VIP (udp and tcp)")
	fmt.Fprintf(w, "  %-9s %-22s %s\n", "l4", s.VIP, "the VIP, round robin over the two l7 nodes (this process)")
	d.mu.Lock()
	for _, c := range d.children {
		if c.admin != "" {
			fmt.Fprintf(w, "  %-9s %-22s pid %-7d dashboard http://%s/\n", c.name, c.addr, c.pid, c.admin)
		}
	}
	for _, c := range d.children {
		if c.admin == "" {
			fmt.Fprintf(w, "  %-9s %-22s pid %-7d %s\n", c.name, c.addr, c.pid, c.zone)
		}
	}
	d.mu.Unlock()
	fmt.Fprintf(w, "  %-9s %-22s %s\n", "registry", s.Registry, "the app instances register and beat here; the l7 nodes follow it")
	fmt.Fprintf(w, "  %-9s %-22s %s\n", "dashboard", "http://"+s.Admin+"/", "dns, l4 and the registry's view of the instances")
	if plan.max > 0 && plan.rate > 0 {
		fmt.Fprintf(w, "\nTraffic: %g requests a second through the chain (resolve www.%s, connect to the VIP), for %s or %d requests; counts in the log every 10s.\n",
			plan.rate, s.Zone, plan.for_, plan.max)
	}
	dnsHost, dnsPort, _ := net.SplitHostPort(s.DNS)
	_, vipPort, _ := net.SplitHostPort(s.VIP)
	lastApp, l7a := d.children[len(s.Apps)-1], d.children[len(s.Apps)]
	fmt.Fprintf(w, `
Try:
  dig @%[1]s -p %[2]s www.%[3]s +short                  # the name → the l4 VIP
  curl -s http://www.%[3]s:%[4]s/ --resolve www.%[3]s:%[4]s:$(dig @%[1]s -p %[2]s www.%[3]s +short | head -1)
  curl -s http://%[5]s/                             # l4 → l7 → one of six app instances
  curl -s 'http://%[6]s/v1/registry/services/public/DEFAULT_GROUP/%[7]s?healthy=false'
  kill %[8]d        # stop %[9]s: it deregisters, the l7 nodes drop it at once
  kill -9 <pid>      # an app instance dies: the l7 nodes' checks drop it within a second, the registry in 3s
  kill %[10]d        # stop l7 node %[11]s: l4 sends its connections to the other node
  curl -s -X POST http://%[12]s/api/v1/pools/app/backends/%[13]s/drain     # drain an instance on %[11]s
  curl -s -X POST http://%[12]s/api/v1/pools/app/backends/%[13]s/undrain
`, dnsHost, dnsPort, s.Zone, vipPort, s.VIP, s.Registry, s.Service, lastApp.pid, lastApp.name, l7a.pid, l7a.name, l7a.admin, s.Apps[0].Addr)
	if d.restart > 0 {
		fmt.Fprintf(w, "A killed l7 node or app instance is started again after %s.\n", d.restart)
	}
	fmt.Fprintf(w, "Press Ctrl-C to stop; every child process stops with the demo.\n")
	d.stdout.Write(w.Bytes())
}

// stopChildren sends SIGTERM to every child's process group, waits for
// them to finish (their shutdowns take a second or two), and kills what is
// left after a deadline.
func (d *demo) stopChildren() {
	d.mu.Lock()
	d.stopping = true
	children := append([]*child(nil), d.children...)
	d.mu.Unlock()
	for _, c := range children {
		c.signal(syscall.SIGTERM)
	}
	deadline := time.After(5 * time.Second)
	for _, c := range children {
		select {
		case <-c.exited():
		case <-deadline:
			for _, c := range children {
				c.signal(syscall.SIGKILL)
			}
			for _, c := range children {
				<-c.exited()
			}
			return
		}
	}
}

// child is one child process of the demo, restarted after d.restart when
// it dies while the demo runs.
type child struct {
	d                       *demo
	name, addr, zone, admin string
	bin                     string
	args                    []string

	// pid and done belong to the current process; d.mu guards them.
	pid  int
	done chan struct{}
}

func (c *child) start() error {
	cmd := exec.Command(c.bin, c.args...)
	w := c.d.out.prefixed("[" + c.name + "] ")
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	c.d.mu.Lock()
	c.pid, c.done = cmd.Process.Pid, done
	c.d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		close(done)
		c.d.mu.Lock()
		stopping := c.d.stopping
		c.d.mu.Unlock()
		if stopping {
			return
		}
		c.d.log.Warn("child exited", "name", c.name, "pid", cmd.Process.Pid, "status", exitText(err))
		if c.d.restart <= 0 {
			return
		}
		time.AfterFunc(c.d.restart, func() {
			c.d.mu.Lock()
			stopping := c.d.stopping
			c.d.mu.Unlock()
			if stopping {
				return
			}
			if err := c.start(); err != nil {
				c.d.log.Error("restarting a child", "name", c.name, "err", err)
				return
			}
			c.d.mu.Lock()
			pid := c.pid
			c.d.mu.Unlock()
			c.d.log.Info("child restarted", "name", c.name, "pid", pid)
		})
	}()
	return nil
}

func (c *child) exited() <-chan struct{} {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return c.done
}

// signal sends sig to the child's process group, if it still runs.
func (c *child) signal(sig syscall.Signal) {
	c.d.mu.Lock()
	pid, done := c.pid, c.done
	c.d.mu.Unlock()
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-pid, sig)
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// lineWriter writes whole lines to w, one writer at a time, so that the
// logs of the demo's processes interleave by line and not by byte.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixed returns a writer that puts prefix before every line.
func (l *lineWriter) prefixed(prefix string) io.Writer {
	return &prefixWriter{l: l, prefix: prefix}
}

type prefixWriter struct {
	l       *lineWriter
	prefix  string
	mu      sync.Mutex
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(p.prefix), p.partial[:i+1]...)
		if _, err := p.l.Write(line); err != nil {
			return n, err
		}
		p.partial = p.partial[i+1:]
	}
	// A line without an end is bounded: flush it as it is.
	if len(p.partial) > 64<<10 {
		p.l.Write(append(append([]byte(p.prefix), p.partial...), '\n'))
		p.partial = p.partial[:0]
	}
	return n, nil
}
