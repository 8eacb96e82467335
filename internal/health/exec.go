package health

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// maxOutput bounds how much of a command's output an exec check keeps for
// its error message.
const maxOutput = 512

// Exec runs a command, as keepalived's MISC_CHECK does, and passes when it
// exits 0. The backend's host and port are in STRATA_BACKEND_HOST and
// STRATA_BACKEND_PORT. The command runs in its own process group and the
// whole group is killed when the check's context ends, so a script that
// forks (curl, sleep) cannot outlive its check.
type Exec struct {
	// Command is the program and its arguments; no shell is involved.
	Command []string
}

var _ Checker = Exec{}

// Check runs the command for addr.
func (e Exec) Check(ctx context.Context, addr string) error {
	if len(e.Command) == 0 {
		return fmt.Errorf("exec check: no command")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("exec check %s: %w", e.Command[0], err)
	}
	cmd := exec.CommandContext(ctx, e.Command[0], e.Command[1:]...)
	cmd.Env = append(os.Environ(), "STRATA_BACKEND_HOST="+host, "STRATA_BACKEND_PORT="+port)
	out := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	killGroupOnCancel(cmd)
	// If a killed command left a descendant holding the output pipe, Wait
	// gives up on the pipe after this long instead of waiting for it.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("exec check %s: %w: %s", e.Command[0], err, msg)
		}
		return fmt.Errorf("exec check %s: %w", e.Command[0], err)
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it and drops the rest
// without failing the writer, so a chatty command is not killed by SIGPIPE.
// It holds its buffer in a field rather than embedding it: an embedded
// bytes.Buffer would lend its ReadFrom to io.Copy and bypass the limit.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }
