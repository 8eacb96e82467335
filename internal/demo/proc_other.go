//go:build !linux

package demo

import "syscall"

// childAttrs puts a demo child in a process group of its own, so that
// `kill PID` and the demo's clean-up reach it and whatever it starts.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
