package sockopt

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// GrowReceiveBuffer asks for a receive buffer of n bytes on c: past the
// net.core.rmem_max limit when the process may (SO_RCVBUFFORCE, which
// needs CAP_NET_ADMIN), else as far as rmem_max allows. A failure leaves
// the kernel's default; the socket works either way.
func GrowReceiveBuffer(c syscall.Conn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
	})
}
