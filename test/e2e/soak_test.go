package e2e

import (
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSoak is the chaos soak: the demo's whole chain, built here from the
// strata binary and config files of its own — a 3-node registry cluster,
// app instances that register and beat with the Go SDK, two l7 nodes whose
// pools follow the registry, an edge process with the l4 VIP over the l7
// nodes and a dns name for the VIP — under steady GET traffic through the
// VIP, while on a schedule the registry's leader is killed with kill -9 and
// restarted, an app instance is killed with kill -9 and restarted, extra
// instances register and leave, an l7 node is stopped and restarted, and
// the other l7 node reloads a changed config every two seconds.
//
// Every request is a GET, which the chain may retry, so none may fail.
// Every process's goroutines, open fds and RSS are measured once the chain
// has settled under traffic and again after the chaos, in the same state;
// they must be flat. `go test` runs the schedule for 15 s (about 35 s in all);
// SOAK=10m repeats it for ten minutes. SOAK_REPORT=file writes the figures
// as a Markdown table (docs/reliability.md holds the recorded runs).
func TestSoak(t *testing.T) {
	// The short version: the schedule for 15 s (three passes or so).
	chaosFor := 15 * time.Second
	if s := os.Getenv("SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SOAK=%q: %v", s, err)
		}
		chaosFor = d
	}
	began := time.Now()
	c := newSoakChain(t)
	c.start()
	t.Logf("chain up in %v", time.Since(began).Round(10*time.Millisecond))

	load := c.startTraffic()
	defer load.stop()
	// Warm up under traffic: connection pools, buffers and the runtime
	// reach their working size before the first measurement.
	c.waitSent(load, 300, 20*time.Second)
	fresh := c.measureAll()

	// The first pass of the schedule is the baseline's warm-up too: after
	// it every SDK client has had a connection to each registry node it
	// failed over to, followers forward to a leader, and the pools' blocking
	// queries sit on whichever node answered last. Those connections are
	// bounded by the number of peers, not by time, and they are the state
	// every later pass leaves behind as well.
	reloads := c.reloadLoop(2 * time.Second)
	chaosBegan := time.Now()
	c.pass()
	before := c.measureAll()
	for time.Since(chaosBegan) < chaosFor {
		c.pass()
	}
	nReloads, reloadErr := reloads.stop()
	if reloadErr != nil {
		t.Error(reloadErr)
	}

	// Settle under traffic (l4 and the pools have everyone back), then
	// measure in the same state as after the first pass.
	c.waitSettled()
	c.waitSent(load, load.count()+300, 20*time.Second)
	after := c.measureAll()
	sent, failed, errs := load.stop()

	report := c.report(fresh, before, after, sent, failed, nReloads, time.Since(chaosBegan), chaosFor)
	t.Log("\n" + report)
	if path := os.Getenv("SOAK_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d GET requests failed; the first ones (seconds since the traffic began):\n%s\nevents:\n%s",
			failed, sent, strings.Join(errs, "\n"), c.events())
	}
	if sent < 1000 {
		t.Errorf("only %d requests were sent; the traffic did not run", sent)
	}
	c.checkFlat(before, after)
}

// Slack of the flatness check, for a process that ran from the first
// measurement to the last. Goroutines and fds move with the connections
// open at the moment of measuring (keep-alive connections to backends, a
// blocking query of an l7 pool that moved to another registry node when
// its node was killed), a few each; RSS moves with the garbage collector's
// pacing. A leak grows with every pass of the schedule and passes these
// within a few passes of SOAK=10m.
const (
	soakSlackGoroutines = 12
	soakSlackFDs        = 12
	soakSlackRSSKB      = 8 << 10
	soakSlackRSSRatio   = 0.25
)

// soakChain is the processes of the soak and what the schedule needs to
// know about them.
type soakChain struct {
	t       *testing.T
	dir     string
	appBin  string
	dnsAddr string
	vip     string
	edge    *soakProc
	regs    []*soakProc // the registry's three nodes
	regHTTP []string
	l7s     []*soakProc
	l7Conf  []string // the l7 nodes' config files
	l7Addr  []string
	l7Admin []string
	apps    []*soakProc
	started time.Time
	passes  int

	mu  sync.Mutex
	evs []string
}

func newSoakChain(t *testing.T) *soakChain {
	c := &soakChain{t: t, dir: t.TempDir()}
	c.appBin = filepath.Join(c.dir, "soakapp")
	args := []string{"build", "-o", c.appBin}
	if raceEnabled {
		args = append(args, "-race") // as strata is built, see TestMain
	}
	if out, err := exec.Command("go", append(args, "./soakapp")...).CombinedOutput(); err != nil {
		t.Fatalf("building soakapp: %v\n%s", err, out)
	}
	return c
}

func (c *soakChain) event(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, fmt.Sprintf("%7.2fs ", time.Since(c.started).Seconds())+fmt.Sprintf(format, args...))
}

func (c *soakChain) events() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.evs, "\n")
}

func (c *soakChain) write(name, body string) string {
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// start brings the chain up: registry cluster, app instances, l7 nodes,
// edge; it returns when a request gets through the VIP and every l7 node
// has every instance ready.
func (c *soakChain) start() {
	t := c.t
	c.started = time.Now()
	var raft, admins []string
	for range 3 {
		c.regHTTP = append(c.regHTTP, freePort(t))
		raft = append(raft, freePort(t))
		admins = append(admins, freePort(t))
	}
	// Data on disk, so that a killed node restarted on its directory
	// rejoins the cluster by itself, as a production node does.
	for i := range 3 {
		join := ""
		if i > 0 {
			join = "  join: [" + c.regHTTP[0] + "]\n"
		}
		conf := fmt.Sprintf(`admin:
  listen: %s
shutdown_timeout: 2s
registry:
  listen: %s
  raft_listen: %s
  data: %s
%s  heartbeat_interval: 1s
  unhealthy_after: 3s
  remove_after: 10s
`, admins[i], c.regHTTP[i], raft[i], filepath.Join(c.dir, fmt.Sprintf("reg-%d", i+1)), join)
		p := newSoakProc(t, fmt.Sprintf("reg-%d", i+1), admins[i], strataBin, "run", "-c", c.write(fmt.Sprintf("reg-%d.yaml", i+1), conf))
		c.regs = append(c.regs, p)
		p.start(soakStarted)
		if i == 0 {
			eventually(t, 10*time.Second, "the first registry node to lead", func() bool {
				return clusterOf(c.regHTTP[0]).State == "Leader"
			})
		}
	}
	eventually(t, 15*time.Second, "three registry members that agree on a leader", func() bool {
		for _, h := range c.regHTTP {
			if cl := clusterOf(h); len(cl.Members) != 3 || cl.Leader == "" {
				return false
			}
		}
		return true
	})

	for i := range 4 {
		addr := freePort(t)
		p := newSoakProc(t, fmt.Sprintf("app-%d", i+1), addr, c.appBin, "-name", fmt.Sprintf("app-%d", i+1), "-listen", addr,
			"-registry", strings.Join(c.regHTTP, ","), "-service", "web")
		c.apps = append(c.apps, p)
		p.start(soakRegistered)
	}

	c.dnsAddr, c.vip = freeUDPTCPPort(t), freePort(t)
	for i, name := range []string{"l7-a", "l7-b"} {
		addr, admin := freePort(t), freePort(t)
		c.l7Addr, c.l7Admin = append(c.l7Addr, addr), append(c.l7Admin, admin)
		path := filepath.Join(c.dir, name+".yaml")
		c.l7Conf = append(c.l7Conf, path)
		if err := c.writeL7(i, 0); err != nil {
			t.Fatal(err)
		}
		p := newSoakProc(t, name, admin, strataBin, "run", "-c", path)
		c.l7s = append(c.l7s, p)
		p.start(soakStarted)
	}

	edgeAdmin := freePort(t)
	conf := fmt.Sprintf(`admin:
  listen: %s
shutdown_timeout: 2s
pools:
  - name: vip
    backends:
      - name: edge
        address: %s
  # The l4 service's real servers: the two l7 nodes, checked on the path
  # each fails during its lameduck second, so l4 moves away before a node
  # stops listening.
  - name: l7-nodes
    lb: rr
    health:
      type: http
      path: /strata/healthz
      interval: 250ms
      timeout: 200ms
      rise: 1
      fall: 2
    passive:
      base_ejection: 2s
      max_ejection: 10s
    backends:
      - name: l7-a
        address: %s
      - name: l7-b
        address: %s
dns:
  listen: [%s]
  zones:
    - name: soak.test
      records:
        - "@ SOA ns1 hostmaster 1 3600 600 86400 5"
        - "@ NS ns1"
        - "ns1 A 127.0.0.1"
      balanced:
        - name: www
          pool: vip
          ttl: 5s
l4:
  services:
    - name: edge
      listen: %s
      pool: l7-nodes
      connect_timeout: 1s
`, edgeAdmin, c.vip, c.l7Addr[0], c.l7Addr[1], c.dnsAddr, c.vip)
	c.edge = newSoakProc(t, "edge", edgeAdmin, strataBin, "run", "-c", c.write("edge.yaml", conf))
	c.edge.start(soakStarted)

	c.waitSettled()
}

// writeL7 writes l7 node i's config. gen changes a response header edit,
// so that every reload of the file is a real change of the route.
func (c *soakChain) writeL7(i, gen int) error {
	edit := ""
	switch gen % 3 {
	case 1:
		edit = "          response_headers:\n            set: {X-Soak-Generation: \"" + strconv.Itoa(gen) + "\"}\n"
	case 2:
		edit = "          request_headers:\n            set: {X-Soak-Generation: \"" + strconv.Itoa(gen) + "\"}\n"
	}
	conf := fmt.Sprintf(`admin:
  listen: %s
shutdown_delay: 1s
shutdown_timeout: 3s
pools:
  - name: app
    registry:
      servers: [%s]
      service: web
      # The app instances run on loopback, which a registry pool leaves
      # out unless told otherwise.
      allow: [127.0.0.0/8]
    # The node checks the instances itself too: a killed instance is out
    # within about a second, before the registry's heartbeats expire.
    health:
      type: http
      path: /healthz
      interval: 1s
      timeout: 500ms
      rise: 1
      fall: 1
l7:
  listeners:
    - name: %s
      listen: %s
      health_path: /strata/healthz
      routes:
        - pool: app
          retry:
            attempts: 2
%s`, c.l7Admin[i], strings.Join(c.regHTTP, ", "), []string{"l7-a", "l7-b"}[i], c.l7Addr[i], edit)
	// A new file renamed into place, so a reload never reads half of it.
	tmp := c.l7Conf[i] + ".tmp"
	if err := os.WriteFile(tmp, []byte(conf), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.l7Conf[i])
}

// pass runs the schedule once.
func (c *soakChain) pass() {
	began := time.Now()
	c.killLeader()
	c.killApp()
	c.extraInstances()
	c.stopL7()
	c.passes++
	c.t.Logf("pass %d of the schedule took %v", c.passes, time.Since(began).Round(100*time.Millisecond))
}

// waitSettled waits until both l7 nodes are up in l4 and every app
// instance is ready in both l7 nodes' pools.
func (c *soakChain) waitSettled() {
	t := c.t
	eventually(t, 20*time.Second, "both l7 nodes up in l4 and every app instance ready in both l7 pools", func() bool {
		for _, n := range c.l7s {
			if b, ok := backendOf(t, c.edge.admin, "l7-nodes", n.name); !ok || !b.Available {
				return false
			}
			for _, a := range c.apps {
				if b, ok := backendOf(t, n.admin, "app", a.admin); !ok || !b.Available {
					return false
				}
			}
		}
		return true
	})
}

func (c *soakChain) waitSent(l *soakLoad, n int, d time.Duration) {
	eventually(c.t, d, fmt.Sprintf("%d requests sent", n), func() bool { return l.count() >= n })
}

// killLeader finds the registry's leader, kills it with kill -9, waits for
// the survivors to elect another, restarts the node on its data and waits
// until it has caught up and the pools follow the registry as before.
func (c *soakChain) killLeader() {
	t := c.t
	var leader string
	eventually(t, 10*time.Second, "a registry leader", func() bool {
		for _, h := range c.regHTTP {
			if cl := clusterOf(h); cl.Leader != "" {
				leader = cl.Leader
				return true
			}
		}
		return false
	})
	i := indexOf(c.regHTTP, leader)
	if i < 0 {
		t.Fatalf("the registry's leader %q is none of its nodes %v", leader, c.regHTTP)
	}
	p := c.regs[i]
	c.event("kill -9 the registry leader %s (%s, pid %d)", p.name, leader, p.pid())
	p.kill()
	var next string
	eventually(t, 15*time.Second, "the surviving registry nodes to elect a new leader", func() bool {
		for j, h := range c.regHTTP {
			if j == i {
				continue
			}
			if cl := clusterOf(h); cl.Leader == "" || cl.Leader == leader {
				return false
			} else {
				next = cl.Leader
			}
		}
		return true
	})
	c.event("new registry leader %s", next)
	p.start(soakStarted)
	eventually(t, 20*time.Second, "the restarted registry node to rejoin and catch up", func() bool {
		me, lead := clusterOf(leader), clusterOf(next)
		return me.Leader != "" && len(me.Members) == 3 && lead.Index > 0 && me.Index == lead.Index && me.Instances == lead.Instances
	})
	c.event("%s restarted (pid %d) and caught up", p.name, p.pid())
	c.waitSettled()
}

// killApp kills an app instance with kill -9, waits until both l7 nodes
// took it out, restarts it and waits until it is back everywhere.
func (c *soakChain) killApp() {
	t := c.t
	p := c.apps[0]
	c.event("kill -9 %s (pid %d)", p.name, p.pid())
	p.kill()
	eventually(t, 5*time.Second, "both l7 nodes to take the killed instance out", func() bool {
		for _, n := range c.l7s {
			if b, ok := backendOf(t, n.admin, "app", p.admin); ok && b.Available {
				return false
			}
		}
		return true
	})
	c.event("%s out of both l7 pools", p.name)
	p.start(soakRegistered)
	c.waitSettled()
	c.event("%s restarted (pid %d) and back in both l7 pools", p.name, p.pid())
}

// extraInstances registers two more instances, waits until both l7 nodes
// send them traffic, then stops them (they deregister first) and waits
// until they are gone.
func (c *soakChain) extraInstances() {
	t := c.t
	var extra []*soakProc
	for i := range 2 {
		addr := freePort(t)
		name := fmt.Sprintf("extra-%d", i+1)
		p := newSoakProc(t, name, addr, c.appBin, "-name", name, "-listen", addr, "-registry", strings.Join(c.regHTTP, ","), "-service", "web")
		p.start(soakRegistered)
		extra = append(extra, p)
	}
	in := func(want bool) func() bool {
		return func() bool {
			for _, n := range c.l7s {
				for _, p := range extra {
					if b, ok := backendOf(t, n.admin, "app", p.admin); (ok && b.Available) != want {
						return false
					}
				}
			}
			return true
		}
	}
	eventually(t, 10*time.Second, "both l7 nodes to take the new instances in", in(true))
	c.event("2 extra instances registered and in both l7 pools")
	for _, p := range extra {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range extra {
		p.waitExit(10 * time.Second)
	}
	eventually(t, 10*time.Second, "both l7 nodes to drop the instances that left", in(false))
	c.event("the extra instances left and are out of both l7 pools")
}

// stopL7 stops l7 node a (kill, SIGTERM), waits until l4 takes it out,
// restarts it and waits until it takes traffic again.
func (c *soakChain) stopL7() {
	t := c.t
	p := c.l7s[0]
	c.event("kill %s (SIGTERM, pid %d)", p.name, p.pid())
	p.signal(syscall.SIGTERM)
	eventually(t, 5*time.Second, "l4 to take the stopping l7 node out", func() bool {
		b, ok := backendOf(t, c.edge.admin, "l7-nodes", p.name)
		return ok && !b.Available
	})
	c.event("%s down in l4", p.name)
	p.waitExit(10 * time.Second)
	p.start(soakStarted)
	c.waitSettled()
	c.event("%s restarted (pid %d) and up in l4", p.name, p.pid())
}

// soakReloads is the loop that rewrites l7 node b's config and reloads it.
type soakReloads struct {
	quit chan struct{}
	done chan struct{}
	n    int
	err  error
}

func (c *soakChain) reloadLoop(every time.Duration) *soakReloads {
	r := &soakReloads{quit: make(chan struct{}), done: make(chan struct{})}
	p := c.l7s[1]
	go func() {
		defer close(r.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for gen := 1; ; gen++ {
			select {
			case <-r.quit:
				return
			case <-tick.C:
			}
			if err := c.writeL7(1, gen); err != nil {
				r.err = err
				return
			}
			before := p.log.count(soakReloaded)
			p.signal(syscall.SIGHUP)
			deadline := time.Now().Add(5 * time.Second)
			for p.log.count(soakReloaded) == before {
				if time.Now().After(deadline) {
					r.err = fmt.Errorf("%s did not reload within 5s of SIGHUP; its log ends:\n%s", p.name, p.log.tail())
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			r.n++
			if n := p.log.count(soakRefused); n > 0 {
				r.err = fmt.Errorf("%s refused %d reloads; its log ends:\n%s", p.name, n, p.log.tail())
				return
			}
		}
	}()
	return r
}

func (r *soakReloads) stop() (int, error) {
	close(r.quit)
	<-r.done
	return r.n, r.err
}

// soakUsage is one process's resources at one moment.
type soakUsage struct {
	pid, goroutines, fds, rssKB int
	profile                     string // the goroutines, grouped by stack, shown when they grew
}

func (c *soakChain) procs() []*soakProc {
	ps := append([]*soakProc(nil), c.regs...)
	ps = append(ps, c.edge)
	ps = append(ps, c.l7s...)
	return append(ps, c.apps...)
}

func (c *soakChain) measureAll() map[string]soakUsage {
	out := map[string]soakUsage{}
	for _, p := range c.procs() {
		out[p.name] = p.measure()
	}
	return out
}

func (p *soakProc) measure() soakUsage {
	t := p.t
	u := soakUsage{pid: p.pid()}
	// Garbage is not a leak: collect it first. Go's splice (l4's copy
	// loop) keeps pipes in a sync.Pool that a finalizer closes two
	// collections after their last use, so an l4 process holds between a
	// few and hundreds of pipe fds depending on when the last GC ran. Count
	// the fds after collections until the count holds still.
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", u.pid))
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		return len(ents)
	}
	u.fds = -1
	for range 6 {
		res, err := http.Get("http://" + p.admin + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Fatalf("%s: collecting garbage: %v", p.name, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		n := fds()
		if n == u.fds {
			break
		}
		u.fds = n
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", u.pid))
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("%s: no VmRSS in /proc/%d/status", p.name, u.pid)
	}
	u.rssKB, _ = strconv.Atoi(string(m[1]))
	res, err := http.Get("http://" + p.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatalf("%s: goroutines: %v", p.name, err)
	}
	defer res.Body.Close()
	prof, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s: goroutines: %v", p.name, err)
	}
	u.profile = string(prof)
	if _, err := fmt.Sscanf(u.profile, "goroutine profile: total %d", &u.goroutines); err != nil {
		t.Fatalf("%s: goroutine profile begins %.40q: %v", p.name, u.profile, err)
	}
	return u
}

// report is the figures as Markdown: each process's goroutines, open fds
// and RSS when the chain had just started, after the first pass of the
// schedule (the baseline of the flatness check) and at the end.
func (c *soakChain) report(fresh, before, after map[string]soakUsage, sent, failed, reloads int, took, chaosFor time.Duration) string {
	var b strings.Builder
	soak := "go test (short)"
	if os.Getenv("SOAK") != "" {
		soak = "SOAK=" + chaosFor.String()
	}
	fmt.Fprintf(&b, "%s, %s: the schedule for %v (%d passes); %d GET requests through the VIP, %d failed; %d reloads of l7-b\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), soak, took.Round(time.Second), c.passes, sent, failed, reloads)
	fmt.Fprintf(&b, "| process | goroutines | open fds | RSS (MiB) |\n| --- | --- | --- | --- |\n")
	row := func(name string, f, s, e soakUsage) {
		fmt.Fprintf(&b, "| %s | %d, %d → %d | %d, %d → %d | %.1f, %.1f → %.1f |\n", name, f.goroutines, s.goroutines, e.goroutines,
			f.fds, s.fds, e.fds, float64(f.rssKB)/1024, float64(s.rssKB)/1024, float64(e.rssKB)/1024)
	}
	for _, p := range c.procs() {
		f, s, e := fresh[p.name], before[p.name], after[p.name]
		name := p.name
		if s.pid != e.pid {
			name += " (restarted)"
		}
		row(name, f, s, e)
	}
	row("registry, 3 nodes together", c.registrySum(fresh), c.registrySum(before), c.registrySum(after))
	fmt.Fprintf(&b, "\nEach cell: at the start, after the first pass → at the end.")
	if raceEnabled {
		fmt.Fprintf(&b, " Every process is a race-detector build (go test -race), whose RSS is mostly the detector's.")
	}
	fmt.Fprintf(&b, "\n")
	return b.String()
}

// checkFlat holds every process that ran from the first measurement to
// the last to the slack above, and the registry's three nodes together:
// the leader runs more goroutines than a follower (replication, the
// heartbeat sweep) and leadership moves with every kill, and the blocking
// queries of the l7 pools move to another node when theirs dies, so one
// node's figures go up and down by role while the cluster's sum does not.
func (c *soakChain) checkFlat(before, after map[string]soakUsage) {
	check := func(name string, s, e soakUsage) {
		if e.goroutines > s.goroutines+soakSlackGoroutines {
			c.t.Errorf("%s: goroutines grew from %d to %d; before:\n%s\nafter:\n%s", name, s.goroutines, e.goroutines, s.profile, e.profile)
		}
		if e.fds > s.fds+soakSlackFDs {
			c.t.Errorf("%s: open fds grew from %d to %d; its TCP sockets now:\n%s", name, s.fds, e.fds, socketsOf(e.pid))
		}
		// A race-detector build's RSS is not the program's: the detector's
		// shadow memory grows with every heap address touched and is not
		// given back, so under -race RSS is reported, not held flat.
		if limit := s.rssKB + max(soakSlackRSSKB, int(float64(s.rssKB)*soakSlackRSSRatio)); e.rssKB > limit && !raceEnabled {
			c.t.Errorf("%s: RSS grew from %d KiB to %d KiB", name, s.rssKB, e.rssKB)
		}
	}
	for _, p := range c.procs() {
		s, e := before[p.name], after[p.name]
		if s.pid == e.pid && !strings.HasPrefix(p.name, "reg-") {
			check(p.name, s, e)
		}
	}
	s, e := c.registrySum(before), c.registrySum(after)
	check("the registry's nodes together", s, e)
}

// registrySum adds up the registry nodes' figures.
func (c *soakChain) registrySum(m map[string]soakUsage) soakUsage {
	var sum soakUsage
	for _, p := range c.regs {
		u := m[p.name]
		sum.goroutines += u.goroutines
		sum.fds += u.fds
		sum.rssKB += u.rssKB
		sum.profile += p.name + ": " + u.profile
	}
	return sum
}

// socketsOf lists a process's TCP sockets with ss, when it is installed,
// to show what a growing fd count holds.
func socketsOf(pid int) string {
	out, err := exec.Command("ss", "-tanp").Output()
	if err != nil {
		return "(ss: " + err.Error() + ")"
	}
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, fmt.Sprintf("pid=%d,", pid)) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// soakCluster is what a registry node says of its cluster.
type soakCluster struct {
	Leader    string            `json:"leader"`
	State     string            `json:"state"`
	Members   []json.RawMessage `json:"members"`
	Index     uint64            `json:"index"`
	Instances int               `json:"instances"`
}

func clusterOf(node string) soakCluster {
	var cl soakCluster
	hc := http.Client{Timeout: time.Second}
	res, err := hc.Get("http://" + node + "/v1/registry/cluster")
	if err != nil {
		return cl
	}
	defer res.Body.Close()
	json.NewDecoder(res.Body).Decode(&cl)
	return cl
}

// soakProc is one process of the soak, which the schedule kills and
// starts again with the same arguments.
type soakProc struct {
	t     *testing.T
	name  string
	admin string // where its goroutines are read: strata's admin listener, soakapp's own
	bin   string
	args  []string
	log   *lineLog

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newSoakProc(t *testing.T, name, admin, bin string, args ...string) *soakProc {
	p := &soakProc{t: t, name: name, admin: admin, bin: bin, args: args, log: &lineLog{counts: map[string]int{}}}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s's log ends:\n%s", p.name, p.log.tail())
		}
	})
	return p
}

// start starts the process and waits until it logs ready.
func (p *soakProc) start(ready string) {
	t := p.t
	n := p.log.count(ready)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.After(15 * time.Second)
	for p.log.count(ready) == n {
		select {
		case <-done:
			t.Fatalf("%s exited before logging %q; its log ends:\n%s", p.name, ready, p.log.tail())
		case <-deadline:
			t.Fatalf("%s did not log %q within 15s; its log ends:\n%s", p.name, ready, p.log.tail())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (p *soakProc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

func (p *soakProc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil {
		cmd.Process.Signal(sig)
	}
}

func (p *soakProc) waitExit(d time.Duration) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-time.After(d):
		p.t.Fatalf("%s did not exit within %v; its log ends:\n%s", p.name, d, p.log.tail())
	}
}

// kill is kill -9, and waits for the process to be gone.
func (p *soakProc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// lineLog keeps the tail of a process's output and counts the lines that
// hold the phrases the soak waits for.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string // the last soakLogLines
	counts  map[string]int
}

const soakLogLines = 200

// The log lines the soak waits for: strata's and soakapp's first lines
// once they serve, and the l7 node's verdict on a reload.
const (
	soakStarted    = `msg="strata started"`
	soakRegistered = "msg=registered"
	soakReloaded   = "config reloaded"
	soakRefused    = "reload refused"
)

var soakPhrases = []string{soakStarted, soakRegistered, soakReloaded, soakRefused}

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := strings.IndexByte(string(l.partial), '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		for _, ph := range soakPhrases {
			if strings.Contains(line, ph) {
				l.counts[ph]++
			}
		}
		l.lines = append(l.lines, line)
		if len(l.lines) > soakLogLines {
			l.lines = l.lines[len(l.lines)-soakLogLines:]
		}
	}
	return len(b), nil
}

func (l *lineLog) count(phrase string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[phrase]
}

func (l *lineLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// soakLoad is the traffic: GET requests through the VIP from two clients,
// one that resolves the name with strata's dns and opens a connection per
// request, as the demo's generator does, and one that keeps its
// connections alive, as a browser does.
type soakLoad struct {
	mu     sync.Mutex
	sent   int
	failed int
	errs   []string
	quit   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

func (c *soakChain) startTraffic() *soakLoad {
	l := &soakLoad{quit: make(chan struct{})}
	// Bounded: the schedule plus ample time to set up and settle.
	limit := time.Now().Add(soakChaosBound() + 5*time.Minute)
	dnsAddr := c.dnsAddr
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsAddr)
	}}
	_, vipPort, _ := net.SplitHostPort(c.vip)
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	kept := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	worker := func(send func() error) {
		defer l.wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for time.Now().Before(limit) {
			select {
			case <-l.quit:
				return
			case <-tick.C:
			}
			err := send()
			l.mu.Lock()
			l.sent++
			if err != nil {
				l.failed++
				if len(l.errs) < 20 {
					l.errs = append(l.errs, fmt.Sprintf("%7.2fs %v", time.Since(c.started).Seconds(), err))
				}
			}
			l.mu.Unlock()
		}
	}
	l.wg.Add(2)
	go worker(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ips, err := resolver.LookupHost(ctx, "www.soak.test.")
		if err != nil {
			return fmt.Errorf("resolving www.soak.test: %w", err)
		}
		if len(ips) == 0 {
			return fmt.Errorf("www.soak.test has no address")
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(ips[0], vipPort)+"/", nil)
		req.Host = "www.soak.test"
		return soakGet(fresh, req)
	})
	go worker(func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+c.vip+"/", nil)
		return soakGet(kept, req)
	})
	return l
}

// soakChaosBound is the longest the schedule runs: SOAK, or a pass.
func soakChaosBound() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("SOAK"))
	return d + 2*time.Minute
}

func soakGet(c *http.Client, req *http.Request) error {
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Instance") == "" {
		return fmt.Errorf("status %s from %q", res.Status, res.Header.Get("X-Instance"))
	}
	return nil
}

func (l *soakLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

func (l *soakLoad) stop() (sent, failed int, errs []string) {
	l.once.Do(func() { close(l.quit) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.failed, l.errs
}
