//go:build unix

package health

import (
	"os"
	"os/exec"
	"syscall"
)

// killGroupOnCancel starts cmd as the leader of a new process group and
// makes cancellation kill the whole group, not only the leader.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if err == syscall.ESRCH {
			// The group finished on its own as the deadline came; Wait
			// must report how it exited, not that it could not be killed.
			return os.ErrProcessDone
		}
		return err
	}
}
