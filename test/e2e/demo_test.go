package e2e

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoServes runs `strata demo` as the README tells a newcomer to, and
// checks with curl that the load balancer answers from every app instance,
// honours the weights, and that a drain through the admin API takes an
// instance out of new traffic.
func TestDemoServes(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (.ci/run installs it)")
	}
	listen, adminAddr := freePort(t), freePort(t)
	cmd := exec.Command(strataBin, "demo", "-listen", listen, "-admin", adminAddr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: &syncBuffer{ch: make(chan string, 1024)}}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("demo exit after SIGTERM: %v", err)
		}
	}()
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.ch <- sc.Text()
		}
		close(p.log.ch)
	}()
	intro, _ := bufio.NewReader(stdout).ReadString('\n')
	if !strings.Contains(intro, listen) {
		t.Errorf("demo's first line does not name its address: %q", intro)
	}
	p.waitLog(t, "strata started", 10*time.Second)

	curl := func(args ...string) string {
		out, err := exec.Command("curl", append([]string{"-s", "--max-time", "5"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return string(out)
	}
	count := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			seen[strings.Fields(curl("http://" + listen + "/"))[2]]++
		}
		return seen
	}
	// wrr with weights 2:1:1 over 40 requests is exact: 20, 10, 10.
	seen := count(40)
	if seen["app-1"] != 20 || seen["app-2"] != 10 || seen["app-3"] != 10 {
		t.Fatalf("40 requests spread %v, want app-1:20 app-2:10 app-3:10", seen)
	}
	curl("-X", "POST", "http://"+adminAddr+"/api/v1/pools/app/backends/app-1/drain")
	seen = count(20)
	if seen["app-1"] != 0 || seen["app-2"] != 10 || seen["app-3"] != 10 {
		t.Fatalf("after draining app-1, 20 requests spread %v, want app-2:10 app-3:10", seen)
	}
	if st := curl("http://" + adminAddr + "/api/v1/status"); !strings.Contains(st, `"draining"`) {
		t.Fatalf("status does not show the drain:\n%s", st)
	}
}
