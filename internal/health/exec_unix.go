//go:build unix

package health

import (
	"os/exec"
	"syscall"
)

// killGroupOnCancel starts cmd as the leader of a new process group and
// makes cancellation kill the whole group, not only the leader.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
