package balance

import (
	"sync/atomic"

	"github.com/strata-lb/strata/internal/upstream"
)

func init() { Register("wrr", newSmoothWRR) }

// maxWRRCycle bounds the precomputed cycle of smooth weighted round robin,
// so that weights like 1000 and 999 cost a few hundred kilobytes, not
// megabytes, per snapshot.
const maxWRRCycle = 1 << 16

// smoothWRR is nginx's smooth weighted round robin made lock-free. nginx
// walks its peers under a lock on every request; the sequence it produces
// only depends on the weights, so we compute one full cycle when the
// snapshot is built and hand it out with an atomic counter.
type smoothWRR struct {
	ready []*upstream.Backend
	seq   []uint32
	next  atomic.Uint64
}

var _ upstream.Picker = (*smoothWRR)(nil)

func newSmoothWRR(ready []*upstream.Backend, opts Options) upstream.Picker {
	r := &smoothWRR{ready: ready, seq: smoothSequence(wrrWeights(ready, maxWRRCycle))}
	// Start the cycle at a random place: every snapshot (a health flip, a
	// slow-start step) builds a new picker, and starting each at the top
	// would favour the first backends; so would many balancers, each
	// starting in step, sending their first requests to one backend.
	r.next.Store(opts.Rand())
	return r
}

// wrrWeights returns the weights of ready reduced by their greatest common
// divisor, which shortens the cycle without changing the sequence's
// proportions. When the cycle would still exceed limit, the weights are
// scaled down proportionally, keeping every backend at 1 or more: shares
// then drift by at most len(ready)/limit, which is far below what a pool
// of real servers can notice.
func wrrWeights(ready []*upstream.Backend, limit int) []int {
	g, total := 0, 0
	for _, b := range ready {
		g = gcd(g, b.EffectiveWeight)
		total += b.EffectiveWeight
	}
	w := make([]int, len(ready))
	for i, b := range ready {
		w[i] = b.EffectiveWeight / g
	}
	if total /= g; total > limit {
		for i := range w {
			w[i] = max(1, int(int64(w[i])*int64(limit)/int64(total)))
		}
	}
	return w
}

func (r *smoothWRR) Pick(uint64) *upstream.Backend {
	n := r.next.Add(1) - 1
	return r.ready[r.seq[n%uint64(len(r.seq))]]
}
