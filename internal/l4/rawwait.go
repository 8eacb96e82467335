package l4

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// waiter parks a goroutine until its socket has data, without reading it,
// so that a quiet connection holds neither a buffer nor a splice pipe. UDP
// sessions use one each; a TCP direction (pump) has its own callback built
// on queued. The callback is built once so that waiting does not allocate.
type waiter struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool
	avail int
	err   error
}

func newWaiter(rc syscall.RawConn) *waiter {
	w := &waiter{rc: rc}
	w.fn = w.check
	return w
}

// check runs with the socket's fd when the poller says it may be
// readable; it returns false to keep waiting.
func (w *waiter) check(fd uintptr) bool {
	n, ok, err := queued(fd)
	w.avail, w.err = n, err
	return ok
}

// wait blocks until data is queued and returns how many bytes are; 0
// means end of stream on TCP. It honours the connection's read deadline.
func (w *waiter) wait() (int, error) {
	w.avail, w.err = 0, nil
	if err := w.rc.Read(w.fn); err != nil {
		return 0, err
	}
	return w.avail, w.err
}

// queued reports how many bytes socket fd has queued, without reading
// them. ok is false when there is nothing yet; n is 0 with ok at the end of
// a TCP stream (or for an empty UDP datagram).
func queued(fd uintptr) (n int, ok bool, err error) {
	n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil {
		return 0, true, err
	}
	if n > 0 {
		return n, true, nil
	}
	// Nothing queued: either nothing yet, or the peer closed (for TCP) or
	// sent an empty datagram (for UDP). A peek tells them apart. It is a
	// raw recvfrom without a source address, which unix.Recvfrom would
	// allocate on every call.
	var peek [1]byte
	r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&peek[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
		return int(r), true, nil
	case unix.EAGAIN, unix.EINTR:
		return 0, false, nil
	}
	return 0, true, errno
}
