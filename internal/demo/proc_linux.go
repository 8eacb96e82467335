package demo

import "syscall"

// childAttrs puts a demo child in a process group of its own, so that
// `kill PID` and the demo's clean-up reach it and whatever it starts, and
// asks the kernel to send it SIGTERM should the demo itself die without
// cleaning up (kill -9 of the demo).
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
