package registry

import (
	"sync"
	"time"
)

// A heartbeat of an instance the registry does not hold registers it again
// (as Nacos 1.x does): that is how clients come back after their instance
// expired or the registry lost it. But a client's last heartbeat may still
// be on its way when the client deregisters — its SDK checked "still
// registered" a moment before — and, arriving after the deregistration, it
// would bring the instance back until it expired again. Nacos has that
// race; strata remembers each explicit deregistration for tombstoneTTL on
// the node that took it, and a heartbeat in that time does not register
// the instance again. A registration clears the mark at once, so a client
// that deregisters and registers again is never refused.
const (
	tombstoneTTL = 10 * time.Second
	// maxTombstones bounds the table: past it, marks older than the TTL
	// are swept, and if none is old enough the new mark is not kept (the
	// worst case is the race above, not unbounded memory).
	maxTombstones = 1 << 16
)

type tombstones struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func tombstoneKey(k Key, id string) string {
	k = k.withDefaults()
	return k.Namespace + "\x00" + k.Group + "\x00" + k.Service + "\x00" + id
}

// mark records the explicit deregistration of ids from k at now.
func (t *tombstones) mark(k Key, ids []string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]time.Time{}
	}
	for _, id := range ids {
		if len(t.m) >= maxTombstones {
			for key, at := range t.m {
				if now.Sub(at) > tombstoneTTL {
					delete(t.m, key)
				}
			}
			if len(t.m) >= maxTombstones {
				return
			}
		}
		t.m[tombstoneKey(k, id)] = now
	}
}

// clear forgets the mark of id in k: it registered again.
func (t *tombstones) clear(k Key, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, tombstoneKey(k, id))
}

// recent reports whether id was deregistered from k within the TTL.
func (t *tombstones) recent(k Key, id string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.m[tombstoneKey(k, id)]
	if ok && now.Sub(at) > tombstoneTTL {
		delete(t.m, tombstoneKey(k, id))
		return false
	}
	return ok
}
