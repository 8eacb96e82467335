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

// tcpListen is TCP_LISTEN of include/net/tcp_states.h.
const tcpListen = 10

// AcceptQueue reports how many connections wait in a listening TCP
// socket's accept queue: Linux's TCP_INFO gives a listener's current
// backlog as tcpi_unacked. ok is false when it cannot tell.
func AcceptQueue(c syscall.Conn) (n int, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil && info.State == tcpListen {
			n, ok = int(info.Unacked), true
		}
	})
	return n, ok
}

// Freebind, a net.ListenConfig Control, sets IP_FREEBIND and IPV6_FREEBIND (Linux 4.15) on a socket
// before it binds. A failure leaves the socket as it was: binding a local
// address works without them.
func Freebind(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
	})
}
