package balance

import (
	"math"

	"github.com/cespare/xxhash/v2"
	"github.com/strata-lb/strata/internal/upstream"
)

func init() {
	Register("rendezvous", newRendezvous)
	Register("hrw", newRendezvous)
}

// rendezvous is weighted highest-random-weight hashing: each backend scores
// the key as -weight/ln(h), h being a hash of (backend, key) in (0, 1), and
// the highest score wins. A backend wins with probability exactly
// weight/total, and when one leaves only the keys it won move. It costs a
// logarithm per backend per pick, so it suits pools of tens, not
// thousands.
type rendezvous struct {
	ready  []*upstream.Backend
	seeds  []uint64 // the hash of each backend's name
	weight []float64
}

var _ upstream.Picker = (*rendezvous)(nil)

func newRendezvous(ready []*upstream.Backend, _ Options) upstream.Picker {
	r := &rendezvous{ready: ready, seeds: make([]uint64, len(ready)), weight: make([]float64, len(ready))}
	for i, b := range ready {
		r.seeds[i] = xxhash.Sum64String(b.Name)
		r.weight[i] = float64(b.EffectiveWeight)
	}
	return r
}

func (r *rendezvous) Pick(key uint64) *upstream.Backend {
	k := mix64(key)
	best, bestScore := 0, math.Inf(-1)
	for i, seed := range r.seeds {
		// The top 53 bits plus a half step give h strictly inside (0, 1),
		// so ln(h) is finite and negative and the score positive.
		h := (float64(mix64(k^seed)>>11) + 0.5) / (1 << 53)
		// Ties cannot depend on input order in practice: equal scores
		// need equal 53-bit hashes and equal weights.
		if s := -r.weight[i] / math.Log(h); s > bestScore {
			best, bestScore = i, s
		}
	}
	return r.ready[best]
}
