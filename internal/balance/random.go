package balance

import "github.com/strata-lb/strata/internal/upstream"

func init() { Register("random", newRandom) }

// random picks a backend uniformly at random, ignoring weights.
type random struct {
	ready []*upstream.Backend
	rand  func() uint64
}

var _ upstream.Picker = (*random)(nil)

func newRandom(ready []*upstream.Backend, opts Options) upstream.Picker {
	return &random{ready: ready, rand: opts.Rand}
}

func (r *random) Pick(uint64) *upstream.Backend {
	return r.ready[reduce(r.rand(), len(r.ready))]
}
