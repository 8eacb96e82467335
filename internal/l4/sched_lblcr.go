package l4

import (
	"slices"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

// lblcr is LVS's locality-based least-connection with replication: each
// destination has a set of backends and connections go to the least loaded
// of the set. When that one is overloaded (see overloadedLocality), wlc
// adds another backend to the set; a set that has not grown for
// lblcrShrinkAfter loses its most loaded member, so it follows the load
// back down.
type lblcr struct {
	mu   sync.Mutex
	sets map[uint64]*lblcrSet
	now  func() time.Time
}

type lblcrSet struct {
	members  []string
	modified time.Time
}

// lblcrShrinkAfter is how long a set must go without growing before it
// loses a member; LVS uses six minutes too.
const lblcrShrinkAfter = 6 * time.Minute

var _ scheduler = (*lblcr)(nil)

func newLBLCR() *lblcr { return &lblcr{sets: map[uint64]*lblcrSet{}, now: time.Now} }

func (l *lblcr) pick(snap *upstream.Snapshot, f flow, ok func(*upstream.Backend) bool) *upstream.Backend {
	key := destKey(f)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.sets[key]
	if set == nil {
		if len(l.sets) >= maxLocalityEntries {
			clear(l.sets)
		}
		set = &lblcrSet{modified: now}
		l.sets[key] = set
	}
	// The least and the most loaded member that may take traffic now.
	var least, most *upstream.Backend
	live := set.members[:0]
	for _, name := range set.members {
		b := snap.Lookup(name)
		if b == nil {
			continue // left the pool: forget it
		}
		live = append(live, name)
		if !b.Available() || !ok(b) {
			continue
		}
		a, w := b.Active.Load(), int64(b.EffectiveWeight)
		if least == nil || a*int64(least.EffectiveWeight) < least.Active.Load()*w {
			least = b
		}
		if most == nil || a*int64(most.EffectiveWeight) > most.Active.Load()*w {
			most = b
		}
	}
	set.members = live
	if least == nil || overloadedLocality(least, snap.Ready) {
		if b := leastLoaded(snap.Ready, ok); b != nil {
			if !slices.Contains(set.members, b.Name) {
				set.members = append(set.members, b.Name)
				set.modified = now
			}
			least = b
		}
	}
	if len(set.members) > 1 && now.Sub(set.modified) > lblcrShrinkAfter && most != nil && most != least {
		set.members = slices.DeleteFunc(set.members, func(n string) bool { return n == most.Name })
		set.modified = now
	}
	return least
}
