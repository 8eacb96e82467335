//go:build !linux

package sockopt

import "syscall"

// GrowReceiveBuffer asks for a receive buffer of n bytes on c, as far as
// the system allows.
func GrowReceiveBuffer(c syscall.Conn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
	})
}
