package l7

import (
	"net/http"

	"github.com/strata-lb/strata/internal/upstream"
)

// choice is the pool and the backend a request goes to, and what a retry
// needs to choose again within the same pool.
type choice struct {
	pi    int // the pool's index in the route's pools
	pool  *upstream.Pool
	snap  *upstream.Snapshot   // the pool's snapshot b was picked from
	snaps []*upstream.Snapshot // every pool's snapshot on sticky routes, else nil
	b     *upstream.Backend    // nil: the pool has no backend available
	key   uint64               // the hash key, for the hashing pickers
	// setCookie is the sticky cookie to send with the response.
	setCookie []string
}

// choose picks the pool and the backend: a split condition, then a valid
// sticky cookie, then the split weights and the pool's picker.
func (rt *route) choose(r *http.Request, ip string) choice {
	pi := 0
	forced := -1
	if len(rt.splits) > 0 {
		forced = rt.forcedPool(r)
	}
	key := rt.hashKey(r, ip)
	var b *upstream.Backend
	var snaps []*upstream.Snapshot
	var setCookie []string
	if rt.sticky != nil {
		snaps = make([]*upstream.Snapshot, len(rt.pools))
		for i, p := range rt.pools {
			snaps[i] = p.Snapshot()
		}
		b, pi = rt.sticky.resolve(r, snaps, forced)
	}
	if b == nil {
		pi = forced
		if pi < 0 {
			pi = rt.drawPool()
		}
	}
	pool := rt.pools[pi]
	snap := pool.Snapshot()
	if snaps != nil {
		snap = snaps[pi]
	}
	if b == nil {
		b = snap.Pick(key)
		if b != nil && rt.sticky != nil {
			setCookie = rt.sticky.setCookie(snaps, pi, b)
		}
	}
	return choice{pi: pi, pool: pool, snap: snap, snaps: snaps, b: b, key: key, setCookie: setCookie}
}
