package l4

import (
	"net/netip"
	"sort"
	"sync"
	"time"
)

// persistTable is LVS's persistence templates: clients of one network
// (the client address masked to the service's netmask) stick to one
// backend until timeout passes without a new connection from them.
type persistTable struct {
	timeout      time.Duration
	bits4, bits6 int
	now          func() time.Time
	mu           sync.Mutex
	m            map[netip.Prefix]persistEntry
	lastSweep    time.Time
	maxEntries   int
}

type persistEntry struct {
	backend string
	expires time.Time
}

// maxPersistEntries bounds the table: a flood from many networks must not
// grow it without limit. When full, expired entries are swept; if none
// have expired, new networks are scheduled without being remembered.
const maxPersistEntries = 1 << 20

func newPersistTable(timeout time.Duration, bits4, bits6 int, now func() time.Time) *persistTable {
	return &persistTable{timeout: timeout, bits4: bits4, bits6: bits6, now: now, m: map[netip.Prefix]persistEntry{}, maxEntries: maxPersistEntries}
}

// network returns the client's network under the table's netmask.
func (t *persistTable) network(client netip.Addr) netip.Prefix {
	client = client.Unmap()
	bits := t.bits6
	if client.Is4() {
		bits = t.bits4
	}
	p, _ := client.Prefix(bits)
	return p
}

// lookup returns the backend the client's network sticks to, or "".
func (t *persistTable) lookup(client netip.Addr) string {
	n := t.network(client)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[n]
	if !ok {
		return ""
	}
	if !now.Before(e.expires) {
		delete(t.m, n)
		return ""
	}
	return e.backend
}

// store makes the client's network stick to backend for timeout from now.
func (t *persistTable) store(client netip.Addr, backend string) {
	n := t.network(client)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[n]; !ok && len(t.m) >= t.maxEntries {
		t.sweepLocked(now)
		if len(t.m) >= t.maxEntries {
			return
		}
	}
	t.m[n] = persistEntry{backend: backend, expires: now.Add(t.timeout)}
	// Sweep now and then so that networks that never come back do not
	// stay in memory; once per timeout keeps the cost negligible.
	if now.Sub(t.lastSweep) > t.timeout {
		t.sweepLocked(now)
	}
}

func (t *persistTable) sweepLocked(now time.Time) {
	for n, e := range t.m {
		if !now.Before(e.expires) {
			delete(t.m, n)
		}
	}
	t.lastSweep = now
}

// PersistStatus is one persistence template, as GET
// /api/v1/l4/persistence shows it.
type PersistStatus struct {
	Service string `json:"service"`
	// Client is the client network (address and netmask).
	Client         string  `json:"client"`
	Backend        string  `json:"backend"`
	ExpiresSeconds float64 `json:"expires_seconds"`
}

func (t *persistTable) list(service string) []PersistStatus {
	now := t.now()
	t.mu.Lock()
	out := make([]PersistStatus, 0, len(t.m))
	for n, e := range t.m {
		if left := e.expires.Sub(now); left > 0 {
			out = append(out, PersistStatus{Service: service, Client: n.String(), Backend: e.backend, ExpiresSeconds: left.Seconds()})
		}
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out
}
