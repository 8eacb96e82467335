package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/demo"
	"github.com/strata-lb/strata/internal/testnet"
)

// TestDemoCluster runs `strata demo cluster` as docs/l4.md tells an
// operator to, after a crashed run left a namespace behind: that one is
// removed, the router (FRR) installs one route to the VIP with the
// three l4 nodes as next hops, vtysh as printed shows it, the client's
// connections reach every node, and after SIGINT no namespace, FRR run
// directory or process of the demo is left.
func TestDemoCluster(t *testing.T) {
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	testnet.NeedTool(t, "/usr/lib/frr/zebra", "frr")
	testnet.NeedTool(t, "/usr/lib/frr/bgpd", "frr")
	testnet.NeedTool(t, "vtysh", "frr")
	const router = demo.NSPrefix + "router"

	// What a demo killed with -9 leaves: a namespace of its own name with
	// a process in it. The demo removes both before it builds its own.
	const stale = demo.NSPrefix + "l4-1"
	exec.Command("ip", "netns", "del", stale).Run()
	testnet.Run(t, "", "ip", "netns", "add", stale)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", stale).Run() })
	leftover := exec.Command("ip", "netns", "exec", stale, "sleep", "300")
	if err := leftover.Start(); err != nil {
		t.Fatal(err)
	}
	leftoverDone := make(chan struct{})
	go func() {
		leftover.Wait()
		close(leftoverDone)
	}()
	t.Cleanup(func() {
		leftover.Process.Kill()
		<-leftoverDone
	})

	var stdout, stderr bytes.Buffer
	out, logs := &lockedWriter{w: &stdout}, &lockedWriter{w: &stderr}
	cmd := exec.Command(strataBin, "demo", "cluster", "-rate", "50", "-restart", "0")
	cmd.Stdout, cmd.Stderr = out, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		if t.Failed() {
			t.Logf("demo output:\n%s\ndemo log:\n%s", logText(out), logText(logs))
		}
	})

	nodes := []string{"10.77.0.11", "10.77.0.12", "10.77.0.13"}
	hops := func() []string {
		out, _ := exec.Command("ip", "-n", router, "route", "show", demo.ClusterVIP+"/32").Output()
		var hops []string
		for _, m := range regexp.MustCompile(`via (\S+)`).FindAllStringSubmatch(string(out), -1) {
			hops = append(hops, m[1])
		}
		slices.Sort(hops)
		return hops
	}
	eventually(t, 90*time.Second, "the router's ECMP route to the VIP through the three nodes", func() bool {
		return slices.Equal(hops(), nodes)
	})
	select {
	case <-leftoverDone:
	default:
		t.Error("the process a crashed run left in " + stale + " still runs")
	}
	if !strings.Contains(logText(logs), "removed a namespace left by an earlier run") {
		t.Error("the demo did not log that it removed the stale namespace")
	}
	// The command the intro prints, as printed.
	eventually(t, 10*time.Second, "the intro", func() bool { return strings.Contains(logText(out), "Press Ctrl-C") })
	vtysh := regexp.MustCompile(`(?m)^\s*(ip netns exec \S+ vtysh -N \S+ -c) 'show ip route (\S+)'`).FindStringSubmatch(logText(out))
	if vtysh == nil {
		t.Fatalf("the intro prints no vtysh command")
	}
	shown, err := exec.Command("sh", "-c", vtysh[1]+" 'show ip route "+vtysh[2]+"'").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", vtysh[0], err, shown)
	}
	for _, n := range nodes {
		if !strings.Contains(string(shown), " "+n+",") {
			t.Errorf("vtysh's route to the VIP lacks next hop %s:\n%s", n, shown)
		}
	}

	// The client's per-node totals: every node carries some of its flows.
	total := regexp.MustCompile(`total: l4-1=(\d+) l4-2=(\d+) l4-3=(\d+)`)
	var last []string
	eventually(t, 30*time.Second, "client traffic through all three nodes", func() bool {
		m := total.FindAllStringSubmatch(logText(logs), -1)
		if len(m) == 0 {
			return false
		}
		last = m[len(m)-1]
		for _, c := range last[1:] {
			if n, _ := strconv.Atoi(c); n == 0 {
				return false
			}
		}
		return true
	})
	t.Logf("client totals: %s", last[0])

	demoPid := cmd.Process.Pid
	cmd.Process.Signal(syscall.SIGINT)
	stopped = true
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the demo exited with %v after SIGINT, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatal("the demo did not exit within 30s of SIGINT")
	}
	list, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(list), demo.NSPrefix) {
		t.Errorf("namespaces left after the demo stopped:\n%s", list)
	}
	if _, err := os.Stat("/var/run/frr/" + router); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FRR's run directory of the demo is left: %v", err)
	}
	if left := markedProcs(demo.MarkerEnv + "=" + strconv.Itoa(demoPid)); len(left) > 0 {
		t.Errorf("processes left after the demo stopped: %v", left)
	}
}

// markedProcs lists the pids and command lines of the processes whose
// environment has the entry env.
func markedProcs(env string) []string {
	var left []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/environ")
		if err != nil || !slices.Contains(strings.Split(string(b), "\x00"), env) {
			continue
		}
		cmdline, _ := os.ReadFile(d + "/cmdline")
		left = append(left, filepath.Base(d)+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return left
}
