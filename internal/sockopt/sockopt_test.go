package sockopt

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// TestGrowReceiveBuffer checks the buffer a UDP socket gets: the size
// asked for as root (CI), whatever rmem_max says; at least the default
// otherwise.
func TestGrowReceiveBuffer(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u := c.(*net.UDPConn)
	before := rcvbuf(t, u)
	const want = 4 << 20
	GrowReceiveBuffer(u, want)
	after := rcvbuf(t, u)
	// Linux reports twice what was set: it counts its own overhead.
	if os.Geteuid() == 0 && after < 2*want {
		t.Errorf("receive buffer %d bytes as root, want %d", after, 2*want)
	}
	if after < before {
		t.Errorf("receive buffer shrank from %d to %d", before, after)
	}
}

func rcvbuf(t *testing.T, u *net.UDPConn) int {
	t.Helper()
	rc, err := u.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var gerr error
	rc.Control(func(fd uintptr) { n, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return n
}
