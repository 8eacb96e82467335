package demo

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

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

// Options are the demo's addresses and the bounds of its traffic, as the
// flags of `strata demo` give them.
type Options struct {
	Admin    string // the edge process's admin listener and dashboard
	Registry string // the registry's HTTP address
	Raft     string // the registry's Raft address
	DNS      string // the DNS server's address (UDP and TCP)
	VIP      string // the l4 VIP
	Zone     string // the DNS zone; www.Zone answers the VIP

	// L7 and L7Admin list the two l7 nodes' listen and admin addresses,
	// comma-separated; Apps the six app instances' addresses, or the first
	// of six consecutive ports. Run checks them.
	L7, L7Admin, Apps string

	Rate       float64       // requests per second of the traffic generator
	TrafficFor time.Duration // stop the traffic generator after this long
	TrafficMax int           // stop it after this many requests (0: no traffic)
	Restart    time.Duration // restart a killed child after this long (0: never)

	Version        string // the strata version, logged and given to the edge
	Stdout, Stderr io.Writer
}

// Run runs the whole chain on loopback until SIGTERM or SIGINT: a
// registry, six app instances in two zones that register and beat, two l7
// nodes following the registry, an l4 VIP in front of them, a dns name for
// the VIP, and a small, bounded stream of requests through it all. The l7
// nodes and the app instances are child processes, so `kill PID` shows
// what the chain does when a hop dies.
//
// The children are this very binary run again, as `strata demo app …`
// (see App) and `strata run -c FILE`: Run must be called from the strata
// command. It returns the exit status: 2 for bad options, 1 when the chain
// does not come up, 0 after a signal.
func Run(o Options) int {
	stdout, stderr := o.Stdout, o.Stderr
	setup := demoSetup{Admin: o.Admin, Registry: o.Registry, Raft: o.Raft, DNS: o.DNS, VIP: o.VIP, Zone: o.Zone, Service: "web"}
	l7s, err := addrList(o.L7, 2)
	if err == nil {
		var admins []string
		if admins, err = addrList(o.L7Admin, 2); err == nil {
			for i, a := range l7s {
				setup.L7 = append(setup.L7, demoNode{Name: "l7-" + string(rune('a'+i)), Addr: a, Admin: admins[i]})
			}
		}
	}
	if err == nil {
		var apps []string
		if apps, err = addrList(o.Apps, 6); err == nil {
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
	d := &demo{setup: setup, stdout: stdout, out: &lineWriter{w: stderr}, restart: o.Restart, version: o.Version}
	d.log = slog.New(slog.NewTextHandler(d.out.prefixed("[edge] "), &slog.HandlerOptions{Level: slog.LevelInfo}))
	return d.run(trafficPlan{rate: o.Rate, for_: o.TrafficFor, max: o.TrafficMax})
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
	version string
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
		Version: d.version,
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
	d.log.Info("strata demo started", "version", d.version, "pid", os.Getpid(), "startup", time.Since(start).Round(time.Millisecond).String())

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
