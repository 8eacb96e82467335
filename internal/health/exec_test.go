package health

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// script writes a shell script and returns the command that runs it. The
// script runs through /bin/sh rather than being executed itself, which
// avoids "text file busy" when another test forks while it is written.
func script(t *testing.T, body string, args ...string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return append([]string{"/bin/sh", p}, args...)
}

func TestExec(t *testing.T) {
	tests := []struct {
		desc    string
		command []string
		wantErr string
	}{
		{desc: "true passes", command: []string{"/bin/true"}},
		{desc: "false fails", command: []string{"/bin/false"}, wantErr: "exit status 1"},
		{desc: "backend address is in the environment", command: script(t,
			`[ "$STRATA_BACKEND_HOST" = 127.0.0.1 ] && [ "$STRATA_BACKEND_PORT" = 8080 ]`)},
		{desc: "exit 1 fails with its output", command: script(t, "echo backend is sad >&2; exit 1"),
			wantErr: "exec check /bin/sh: exit status 1: backend is sad"},
		{desc: "exit 2 fails", command: script(t, "exit 2"), wantErr: "exit status 2"},
		{desc: "missing program fails", command: []string{"/nonexistent/check"}, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			checkErr(t, Exec{Command: tt.command}.Check(ctx, "127.0.0.1:8080"), tt.wantErr)
		})
	}
}

func TestExecOutputIsBounded(t *testing.T) {
	cmd := script(t, "i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done; exit 1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := Exec{Command: cmd}.Check(ctx, "127.0.0.1:1")
	if err == nil {
		t.Fatal("check passed, want exit status 1")
	}
	if len(err.Error()) > maxOutput+200 {
		t.Fatalf("error is %d bytes long; output must be cut at %d", len(err.Error()), maxOutput)
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	// The script forks a sleeper and waits for it: killing only the shell
	// would leave the sleeper running.
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := script(t, `sleep 30 & echo $! > "$1"; wait`, pidFile)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Exec{Command: cmd}.Check(ctx, "127.0.0.1:1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("check of a sleeping command = %v, want deadline exceeded", err)
	}
	// WaitDelay is 1s; returning well before it shows the group died and
	// released the output pipe.
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Fatalf("check returned after %v with a 300ms timeout", el)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("script did not record its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the forked sleeper to die", func() bool { return !processRunning(pid) })
}

// processRunning reports whether pid exists and is not a zombie (a killed
// orphan stays a zombie until its new parent reaps it).
func processRunning(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
