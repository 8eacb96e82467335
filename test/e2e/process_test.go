// Package e2e drives the real strata binary as a user would: it builds
// cmd/strata, runs it with config files, signals it, and talks to it with
// real clients.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

var strataBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	strataBin = filepath.Join(dir, "strata")
	args := []string{"build", "-o", strataBin}
	if raceEnabled {
		// go test -race (as make test runs) covers the processes the tests
		// start as well. A race in one makes it exit at once with the
		// report on its stderr rather than run on, so the test that drove
		// it fails.
		args = append(args, "-race")
		if os.Getenv("GORACE") == "" {
			os.Setenv("GORACE", "halt_on_error=1")
		}
	}
	build := exec.Command("go", append(args, "../../cmd/strata")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building strata:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestValidateNamesFileLineAndField(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		desc, body string
		want       []string // substrings of the error output
	}{
		{
			desc: "misspelt field",
			body: "pools:\n  - name: app\n    backends:\n      - adress: 127.0.0.1:9001\n",
			want: []string{"strata.yaml:4", "adress", "address"},
		},
		{
			desc: "route to a missing pool",
			body: "pools:\n  - name: app\n    backends:\n      - address: 127.0.0.1:9001\nl7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      routes:\n        - pool: nope\n",
			want: []string{"strata.yaml:9", "pool", "nope"},
		},
		{
			desc: "bad address",
			body: "pools:\n  - name: app\n    backends:\n      - address: 127.0.0.1\n",
			want: []string{"strata.yaml:4", "address"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			path := filepath.Join(dir, "strata.yaml")
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(strataBin, "validate", "-c", path).CombinedOutput()
			var ee *exec.ExitError
			if !errorAs(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("validate exit: %v, want status 1; output:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func errorAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func TestValidateExample(t *testing.T) {
	out, err := exec.Command(strataBin, "validate", "-c", "../../examples/strata.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("examples/strata.yaml: %v\n%s", err, out)
	}
}

// freePort returns a loopback address that was free a moment ago. The
// process under test must bind a fixed address from its config file.
// freePort returns a loopback address below the ephemeral range, free a
// moment ago, for a child process to bind (see testnet.FreeAddr).
func freePort(t *testing.T) string { return testnet.FreeAddr(t) }

type proc struct {
	cmd *exec.Cmd
	log *syncBuffer
}

type syncBuffer struct {
	ch  chan string
	all bytes.Buffer
}

// startStrata runs `strata run -c path` and waits until it logs that it
// started.
func startStrata(t *testing.T, path string) *proc {
	t.Helper()
	return startStrataArgs(t, "run", "-c", path)
}

// startStrataArgs runs strata with args and waits until it logs that it
// started.
func startStrataArgs(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(strataBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Room for a long log that no waitLog reads: a full channel would
	// stop the reader, and then strata itself when the pipe fills.
	p := &proc{cmd: cmd, log: &syncBuffer{ch: make(chan string, 1<<16)}}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.ch <- sc.Text()
		}
		close(p.log.ch)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return
		}
		// A process that died by itself (a panic, or the race detector's
		// exit 66) is the likeliest cause of a failure: say so, with the
		// rest of its log.
		killErr := cmd.Process.Kill()
		waitErr := cmd.Wait()
		if !t.Failed() {
			return
		}
		if killErr != nil {
			t.Logf("strata %v had exited by itself: %v", args, waitErr)
		}
		for line := range p.log.ch {
			p.log.all.WriteString(line + "\n")
		}
		t.Logf("strata %v log:\n%s", args, p.log.all.String())
	})
	p.waitLog(t, "strata started", 10*time.Second)
	return p
}

// waitLog reads the process's log until a line matches re.
func (p *proc) waitLog(t *testing.T, re string, d time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(d)
	for {
		select {
		case line, ok := <-p.log.ch:
			if !ok {
				t.Fatalf("strata exited before logging %q; log:\n%s", re, p.log.all.String())
			}
			p.log.all.WriteString(line + "\n")
			if rx.MatchString(line) {
				return line
			}
		case <-timeout:
			t.Fatalf("no log line matching %q within %v; log:\n%s", re, d, p.log.all.String())
		}
	}
}

func TestRunReloadAndGracefulStop(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "one")
	}))
	defer slow.Close()
	two := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "two")
	}))
	defer two.Close()

	listen, adminAddr := freePort(t), freePort(t)
	conf := func(backend string) string {
		return fmt.Sprintf("admin:\n  listen: %s\nshutdown_timeout: 10s\npools:\n  - name: app\n    backends:\n      - address: %s\nl7:\n  listeners:\n    - listen: %s\n      routes:\n        - pool: app\n",
			adminAddr, strings.TrimPrefix(backend, "http://"), listen)
	}
	path := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(path, []byte(conf(slow.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startStrata(t, path)
	body := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := body("http://" + listen + "/"); got != "one" {
		t.Fatalf("first request: %q", got)
	}

	// A bad file on SIGHUP is refused and the old config keeps serving.
	os.WriteFile(path, []byte("pools: [\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reload refused", 10*time.Second)
	if got := body("http://" + listen + "/"); got != "one" {
		t.Fatalf("after a bad reload: %q", got)
	}

	// Back to a good file; then start a slow request and SIGTERM while it
	// is in flight: it must finish and the process must exit 0.
	os.WriteFile(path, []byte(conf(slow.URL)), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	done := make(chan string, 1)
	go func() { done <- body("http://" + listen + "/slow") }()
	eventually(t, 5*time.Second, "the slow request to reach the backend", func() bool {
		return statusActive(adminAddr) > 0
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, "shutting down", 5*time.Second)
	close(release)
	if got := <-done; got != "one" {
		t.Fatalf("in-flight request during shutdown: %q", got)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// statusActive reads the sum of active requests from the admin status.
func statusActive(adminAddr string) int {
	resp, err := http.Get("http://" + adminAddr + "/api/v1/status")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`"active":\s*(\d+)`).FindAllSubmatch(b, -1)
	n := 0
	for _, x := range m {
		var v int
		fmt.Sscan(string(x[1]), &v)
		n += v
	}
	return n
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
