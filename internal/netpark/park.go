// Package netpark holds idle sockets in one epoll set, so that an idle
// connection costs no goroutine. A goroutine's stack is most of what an
// idle Go connection costs (2 KiB at the least, and 8 KiB once it has
// served a request); an event-driven proxy such as nginx or HAProxy keeps
// a few hundred bytes per idle connection. A connection that has been
// quiet for a while registers its socket here (one-shot) and its goroutine
// ends; the first readable event starts a goroutine again, which calls the
// owner's Resume.
//
// The epoll descriptor is itself polled by Go's netpoller (an epoll set is
// readable while it has events), so the loop that reads it is a parked
// goroutine, not a thread blocked in epoll_wait.
//
// Both proxies use it: l4 parks each quiet direction of a proxied TCP
// connection, l7 a client's keep-alive connection between requests.
package netpark

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Resumer is what parks: the owner of an Item, whose Resume runs in a new
// goroutine when its socket becomes readable (or hangs up).
type Resumer interface {
	Resume()
}

// The states of an Item. A parked item has no goroutine: its socket is
// armed in the epoll set, and whoever moves it out of Parked (an event,
// or its owner closing it) owns it.
const (
	Running int32 = iota
	Parked
	Done
)

// Item is the parking state of one socket, embedded in its owner so that
// parking allocates nothing after the first time.
type Item struct {
	// State is Running, Parked or Done; its owner moves it to Done (and
	// takes a parked item over) with a compare-and-swap.
	State atomic.Int32
	// mu orders a Park against the Resume its event starts: the event
	// can come as soon as the socket is armed, before Park has returned.
	mu    sync.Mutex
	owner Resumer
	pk    *Parker
	fn    func(fd uintptr) // arm, built once
	// The socket's descriptor and the generation its events carry, both
	// set on the first park.
	fd    int32
	gen   uint32
	added bool
	// failed says the last arming failed (the socket closed, the parker
	// closed, or the kernel refused it); a bool rather than the error, as
	// the item is embedded in every connection and Park's caller only
	// falls back.
	failed bool
}

// Parker is one epoll set and the goroutine that dispatches its events.
type Parker struct {
	epfd   int
	file   *os.File
	rc     syscall.RawConn
	slots  fdTable
	gen    atomic.Uint32
	events []unix.EpollEvent
	drain  func(fd uintptr) bool
	done   chan struct{}
	// mu keeps the epoll descriptor open while an item arms on it: a
	// number closed by Close and reused could otherwise receive another
	// set's registration. Arming is once per idle spell, not per request.
	mu     sync.RWMutex
	closed bool
}

// New opens an epoll set and starts its dispatcher; name labels the
// descriptor (as in /proc/self/fd).
func New(name string) (*Parker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	f := os.NewFile(uintptr(epfd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	pk := &Parker{epfd: epfd, file: f, rc: rc, events: make([]unix.EpollEvent, 128), done: make(chan struct{})}
	pk.drain = pk.dispatch
	go pk.loop()
	return pk, nil
}

// loop waits for the epoll set to have events and resumes the items they
// belong to, until Close.
func (pk *Parker) loop() {
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
func (pk *Parker) dispatch(uintptr) bool {
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
			it := pk.slots.get(int(ev.Fd))
			// A stale event (its socket closed and the number reused)
			// names an older generation; one for an item that is
			// running or done is dropped — a running item re-arms when
			// it parks, and re-arming reports data already queued.
			if it != nil && it.gen == uint32(ev.Pad) && it.State.CompareAndSwap(Parked, Running) {
				go it.resume()
			}
		}
		if n < len(pk.events) {
			return false
		}
	}
}

// Close closes the epoll set and waits for its dispatcher to end. Items
// still parked are never resumed: their owners take them over.
func (pk *Parker) Close() {
	pk.mu.Lock()
	pk.closed = true
	pk.file.Close()
	pk.mu.Unlock()
	<-pk.done
}

// Init names the item's owner; it must be called before the first Park.
func (it *Item) Init(owner Resumer) { it.owner = owner }

// Park arms rc's socket in pk for one readable event and reports whether
// the item is no longer the calling goroutine's: parked (an event will
// resume it), or taken over by its owner meanwhile. It reports false when
// the socket could not be armed (closed, or beyond the table) and the item
// is still the caller's, Running. The caller ends its goroutine on true
// and touches the item no more.
func (it *Item) Park(pk *Parker, rc syscall.RawConn) bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.gen == 0 {
		it.gen = pk.gen.Add(1)
	}
	if it.fn == nil {
		it.fn = it.arm
	}
	it.pk, it.failed = pk, false
	it.State.Store(Parked)
	if rc.Control(it.fn) == nil && !it.failed {
		return true
	}
	return !it.State.CompareAndSwap(Parked, Running)
}

// resume runs the owner of an item that an event took out of Parked,
// after the Park that armed it has returned.
func (it *Item) resume() {
	it.mu.Lock()
	it.mu.Unlock() //nolint:staticcheck // an empty critical section, for the ordering
	it.owner.Resume()
}

// arm registers the socket for one readable event, with the runtime
// holding fd open so that the number cannot be another socket's
// meanwhile. Level-triggered one-shot: re-arming a socket that has data
// queued reports it at once; a hang-up reports too.
func (it *Item) arm(fd uintptr) {
	pk := it.pk
	pk.mu.RLock()
	defer pk.mu.RUnlock()
	if pk.closed {
		it.failed = true
		return
	}
	op := unix.EPOLL_CTL_MOD
	if !it.added {
		if !pk.slots.set(int(fd), it) {
			it.failed = true // a descriptor beyond the table
			return
		}
		it.fd = int32(fd)
		op = unix.EPOLL_CTL_ADD
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd), Pad: int32(it.gen)}
	if err := unix.EpollCtl(pk.epfd, op, int(fd), &ev); err != nil {
		it.failed = true
		return
	}
	it.added = true
}

// Forget removes the item from its parker's table, once it is done and
// will not park again.
func (it *Item) Forget() {
	it.mu.Lock()
	if it.added {
		it.pk.slots.clear(int(it.fd), it)
		it.added = false
	}
	it.mu.Unlock()
}

// fdTable maps a socket descriptor to the item parked on it, in chunks
// allocated as descriptors grow, so that a lookup takes no lock.
type fdTable struct {
	mu     sync.Mutex // serialises chunk allocation
	chunks [fdChunks]atomic.Pointer[[fdChunk]atomic.Pointer[Item]]
}

const (
	fdChunk  = 1024
	fdChunks = 4096 // descriptors up to 4M; above that an item never parks
)

func (t *fdTable) get(fd int) *Item {
	if fd < 0 || fd >= fdChunk*fdChunks {
		return nil
	}
	ch := t.chunks[fd/fdChunk].Load()
	if ch == nil {
		return nil
	}
	return ch[fd%fdChunk].Load()
}

func (t *fdTable) set(fd int, it *Item) bool {
	if fd < 0 || fd >= fdChunk*fdChunks {
		return false
	}
	ch := t.chunks[fd/fdChunk].Load()
	if ch == nil {
		t.mu.Lock()
		if ch = t.chunks[fd/fdChunk].Load(); ch == nil {
			ch = new([fdChunk]atomic.Pointer[Item])
			t.chunks[fd/fdChunk].Store(ch)
		}
		t.mu.Unlock()
	}
	ch[fd%fdChunk].Store(it)
	return true
}

// clear removes it from fd's slot unless a newer socket with the same
// number has taken it.
func (t *fdTable) clear(fd int, it *Item) {
	if ch := t.chunks[fd/fdChunk].Load(); ch != nil {
		ch[fd%fdChunk].CompareAndSwap(it, nil)
	}
}
