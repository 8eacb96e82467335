package l4

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// parker holds the idle directions of TCP connections in one epoll set,
// so that an idle connection costs no goroutine. A goroutine's stack is
// most of what a Go connection costs: two of them (one per direction) made
// an idle proxied connection 3.4 times HAProxy's memory. A direction
// moves bytes in a goroutine while they flow; when its source has been
// quiet for a while (Server.parkAfter), it registers the source socket here (one-shot) and
// its goroutine ends. The first readable event starts a goroutine again.
//
// The epoll descriptor is itself polled by Go's netpoller (an epoll set is
// readable while it has events), so the loop that reads it is a parked
// goroutine, not a thread blocked in epoll_wait.
type parker struct {
	epfd   int
	file   *os.File
	rc     syscall.RawConn
	slots  fdTable
	gen    atomic.Uint32
	events []unix.EpollEvent
	drain  func(fd uintptr) bool
	done   chan struct{}
}

// defaultParkAfter is how long a direction's goroutine waits in the
// netpoller for more bytes before it parks (Server.parkAfter): long enough
// that a request-response exchange does not park between the request and
// the response, short enough that few goroutines of connections that went
// quiet are alive at once.
const defaultParkAfter = 200 * time.Millisecond

func newParker() (*parker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "l4-parker")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	pk := &parker{epfd: epfd, file: f, rc: rc, events: make([]unix.EpollEvent, 128), done: make(chan struct{})}
	pk.drain = pk.dispatch
	go pk.loop()
	return pk, nil
}

// loop waits for the epoll set to have events and starts the directions
// they belong to, until close.
func (pk *parker) loop() {
	defer close(pk.done)
	for {
		if err := pk.rc.Read(pk.drain); err != nil {
			return
		}
	}
}

// dispatch takes every pending event without blocking and returns false
// to wait for more: Go's netpoller watches the epoll descriptor edge-
// triggered, so the set is drained before each wait.
func (pk *parker) dispatch(uintptr) bool {
	for {
		n, err := unix.EpollWait(pk.epfd, pk.events, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Not expected of a valid set and buffer. Waiting for the
			// next readiness rather than retrying at once keeps a
			// persistent error from spinning a core.
			return false
		}
		for i := range n {
			ev := &pk.events[i]
			u := pk.slots.get(int(ev.Fd))
			// A stale event (its socket closed and the number reused)
			// names an older generation; one for a direction that is
			// running or done is dropped — a running direction re-arms
			// when it parks, and re-arming reports data already queued.
			if u != nil && u.gen == uint32(ev.Pad) && u.state.CompareAndSwap(pumpParked, pumpRunning) {
				go u.resume()
			}
		}
		if n < len(pk.events) {
			return false
		}
	}
}

func (pk *parker) close() {
	pk.file.Close()
	<-pk.done
}

// fdTable maps a socket descriptor to the direction parked on it, in
// chunks allocated as descriptors grow, so that a lookup takes no lock.
type fdTable struct {
	mu     sync.Mutex // serialises chunk allocation
	chunks [fdChunks]atomic.Pointer[[fdChunk]atomic.Pointer[pump]]
}

const (
	fdChunk  = 1024
	fdChunks = 4096 // descriptors up to 4M; above that a direction never parks
)

func (t *fdTable) get(fd int) *pump {
	if fd < 0 || fd >= fdChunk*fdChunks {
		return nil
	}
	ch := t.chunks[fd/fdChunk].Load()
	if ch == nil {
		return nil
	}
	return ch[fd%fdChunk].Load()
}

func (t *fdTable) set(fd int, u *pump) bool {
	if fd < 0 || fd >= fdChunk*fdChunks {
		return false
	}
	ch := t.chunks[fd/fdChunk].Load()
	if ch == nil {
		t.mu.Lock()
		if ch = t.chunks[fd/fdChunk].Load(); ch == nil {
			ch = new([fdChunk]atomic.Pointer[pump])
			t.chunks[fd/fdChunk].Store(ch)
		}
		t.mu.Unlock()
	}
	ch[fd%fdChunk].Store(u)
	return true
}

// clear removes u from fd's slot unless a newer socket with the same
// number has taken it.
func (t *fdTable) clear(fd int, u *pump) {
	if ch := t.chunks[fd/fdChunk].Load(); ch != nil {
		ch[fd%fdChunk].CompareAndSwap(u, nil)
	}
}
