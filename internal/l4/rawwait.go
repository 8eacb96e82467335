package l4

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// waiter parks a goroutine until its socket has data, without reading it,
// so that a quiet connection holds neither a buffer nor a splice pipe. One
// is made per direction; its callback is built once so that waiting does
// not allocate.
type waiter struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool
	avail int
	err   error
	peek  [1]byte
}

func newWaiter(rc syscall.RawConn) *waiter {
	w := &waiter{rc: rc}
	w.fn = w.check
	return w
}

// check runs with the socket's fd when the poller says it may be
// readable; it returns false to keep waiting.
func (w *waiter) check(fd uintptr) bool {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil {
		w.err = err
		return true
	}
	if n > 0 {
		w.avail = n
		return true
	}
	// Nothing queued: either nothing yet, or the peer closed (for TCP) or
	// sent an empty datagram (for UDP). A peek tells them apart.
	m, _, err := unix.Recvfrom(int(fd), w.peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case errors.Is(err, unix.EAGAIN):
		return false
	case errors.Is(err, unix.EINTR):
		return false
	case err != nil:
		w.err = err
		return true
	}
	w.avail = m
	return true
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
