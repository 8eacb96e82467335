package l4

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

// Connection states, as ipvsadm -Lnc names them.
const (
	stateEstablished uint32 = iota
	stateFinWait
	stateUDP
	stateClosed
)

var stateNames = [...]string{"ESTABLISHED", "FIN_WAIT", "UDP", "CLOSE"}

// conn is one proxied TCP connection or UDP session in the table. Its
// counters are atomics because the two directions update them while the
// admin API reads them.
type conn struct {
	id     uint64
	proto  string
	svc    *service
	dest   *destStats
	client netip.AddrPort
	vip    netip.AddrPort
	// local is the local address of a TCP connection's socket to the
	// backend, so that a listener of this process can tell a request
	// that l4 relayed to it (Server.Relays).
	local   netip.AddrPort
	backend *upstream.Backend
	start   int64 // unix nanoseconds
	last    atomic.Int64
	in      atomic.Uint64 // client to backend
	out     atomic.Uint64 // backend to client
	state   atomic.Uint32
	// closer ends the connection or session from outside (shutdown).
	closer func()
}

func (c *conn) touch(now int64) { c.last.Store(now) }

// connTable holds every live connection, in shards so that accepting on
// many cores does not serialise on one lock.
type connTable struct {
	next   atomic.Uint64
	shards [64]connShard
}

type connShard struct {
	mu sync.Mutex
	m  map[uint64]*conn
	_  [40]byte // keeps neighbouring shards' locks off one cache line
}

func newConnTable() *connTable {
	t := &connTable{}
	for i := range t.shards {
		t.shards[i].m = map[uint64]*conn{}
	}
	return t
}

func (t *connTable) add(c *conn) {
	c.id = t.next.Add(1)
	sh := &t.shards[c.id%uint64(len(t.shards))]
	sh.mu.Lock()
	sh.m[c.id] = c
	sh.mu.Unlock()
}

func (t *connTable) remove(c *conn) {
	sh := &t.shards[c.id%uint64(len(t.shards))]
	sh.mu.Lock()
	delete(sh.m, c.id)
	sh.mu.Unlock()
}

// each calls fn for every connection; fn must not block.
func (t *connTable) each(fn func(c *conn)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, c := range sh.m {
			fn(c)
		}
		sh.mu.Unlock()
	}
}

func (t *connTable) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// ConnStatus is one row of the connection table, as GET /api/v1/l4/conns
// and strata ctl conns show it.
type ConnStatus struct {
	ID       uint64 `json:"id"`
	Protocol string `json:"protocol"`
	Service  string `json:"service"`
	Client   string `json:"client"`
	VIP      string `json:"vip"`
	Backend  string `json:"backend"`
	Pool     string `json:"pool"`
	State    string `json:"state"`
	// AgeSeconds is the time since the connection was accepted.
	AgeSeconds float64 `json:"age_seconds"`
	// IdleSeconds is the time since bytes last moved.
	IdleSeconds float64 `json:"idle_seconds"`
	// ExpiresSeconds is the time left before the idle timeout closes it.
	ExpiresSeconds float64 `json:"expires_seconds"`
	BytesIn        uint64  `json:"bytes_in"`
	BytesOut       uint64  `json:"bytes_out"`
}

func (c *conn) status(now time.Time) ConnStatus {
	st := c.state.Load()
	last := time.Unix(0, c.last.Load())
	idle := now.Sub(last)
	return ConnStatus{
		ID:             c.id,
		Protocol:       c.proto,
		Service:        c.svc.name,
		Client:         c.client.String(),
		VIP:            c.vip.String(),
		Backend:        c.backend.Addr,
		Pool:           c.backend.Pool,
		State:          stateNames[min(int(st), len(stateNames)-1)],
		AgeSeconds:     now.Sub(time.Unix(0, c.start)).Seconds(),
		IdleSeconds:    idle.Seconds(),
		ExpiresSeconds: max(0, (c.svc.idleTimeout(st) - idle).Seconds()),
		BytesIn:        c.in.Load(),
		BytesOut:       c.out.Load(),
	}
}

// relays reports whether a live TCP connection's socket to its backend
// has the local address ap.
func (t *connTable) relays(ap netip.AddrPort) bool {
	found := false
	t.each(func(c *conn) {
		if c.proto == "tcp" && c.local.Port() == ap.Port() && c.local.Addr().Unmap() == ap.Addr() {
			found = true
		}
	})
	return found
}
