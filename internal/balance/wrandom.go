package balance

import (
	"math/bits"

	"github.com/strata-lb/strata/internal/upstream"
)

func init() { Register("wrandom", newWeightedRandom) }

// weightedRandom picks a backend at random with probability proportional
// to its weight: a random point in [0, total) falls into one backend's
// stretch of the prefix sums, found by binary search.
type weightedRandom struct {
	ready []*upstream.Backend
	// upto[i] is the sum of the weights of ready[0..i].
	upto  []uint64
	total uint64
	rand  func() uint64
}

var _ upstream.Picker = (*weightedRandom)(nil)

func newWeightedRandom(ready []*upstream.Backend, opts Options) upstream.Picker {
	r := &weightedRandom{ready: ready, upto: make([]uint64, len(ready)), rand: opts.Rand}
	for i, b := range ready {
		r.total += uint64(b.EffectiveWeight)
		r.upto[i] = r.total
	}
	return r
}

func (r *weightedRandom) Pick(uint64) *upstream.Backend {
	// The high word of rand × total is uniform on [0, total) up to a
	// bias of total/2^64, without a division.
	x, _ := bits.Mul64(r.rand(), r.total)
	lo, hi := 0, len(r.upto)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.upto[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return r.ready[lo]
}
