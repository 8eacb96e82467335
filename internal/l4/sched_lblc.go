package l4

import (
	"sync"

	"github.com/strata-lb/strata/internal/upstream"
)

// lblc is LVS's locality-based least-connection scheduler: connections to
// one destination address go to the backend that last served it, unless
// that backend is gone or overloaded — more active connections than its
// weight while another backend is under half of its own — in which case
// wlc picks a new one and the destination moves there. Behind a proxy the
// destination is the VIP the client connected to, so a service with many
// VIPs (a port range on several addresses) keeps each on one backend.
type lblc struct {
	mu    sync.Mutex
	table map[uint64]string // destination key → backend name
}

// maxLocalityEntries bounds lblc's and lblcr's tables; a proxy's
// destinations are its own addresses, so this is never reached in
// practice and only guards against a bug or a huge range.
const maxLocalityEntries = 1 << 16

var _ scheduler = (*lblc)(nil)

func newLBLC() *lblc { return &lblc{table: map[uint64]string{}} }

func (l *lblc) pick(snap *upstream.Snapshot, f flow, ok func(*upstream.Backend) bool) *upstream.Backend {
	key := destKey(f)
	l.mu.Lock()
	name := l.table[key]
	l.mu.Unlock()
	if b := snap.Lookup(name); b != nil && b.Available() && ok(b) && !overloadedLocality(b, snap.Ready) {
		return b
	}
	b := leastLoaded(snap.Ready, ok)
	if b != nil {
		l.mu.Lock()
		if len(l.table) >= maxLocalityEntries {
			clear(l.table)
		}
		l.table[key] = b.Name
		l.mu.Unlock()
	}
	return b
}

// overloadedLocality is LVS's is_overloaded for lblc and lblcr: b has more
// active connections than its weight and some other backend has fewer
// than half of its weight.
func overloadedLocality(b *upstream.Backend, ready []*upstream.Backend) bool {
	if b.Active.Load() <= int64(b.EffectiveWeight) {
		return false
	}
	for _, o := range ready {
		if o != b && 2*o.Active.Load() < int64(o.EffectiveWeight) {
			return true
		}
	}
	return false
}
