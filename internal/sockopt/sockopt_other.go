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

// AcceptQueue reports how many connections wait in a listening socket's
// accept queue; only Linux tells, so ok is false here.
func AcceptQueue(c syscall.Conn) (n int, ok bool) { return 0, false }

// Freebind does nothing here: IP_FREEBIND is Linux's.
func Freebind(_, _ string, _ syscall.RawConn) error { return nil }
