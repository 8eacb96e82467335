package balance

import "github.com/strata-lb/strata/internal/upstream"

func init() { Register("p2c", newPowerOfTwo) }

// powerOfTwo is least-request by the power of two choices: look at two
// distinct backends chosen at random and take the one with less
// Active/weight. Two samples avoid both the herd that a global least-conn
// causes when many balancers share stale counters, and the cost of a scan.
type powerOfTwo struct {
	ready []*upstream.Backend
	rand  func() uint64
}

var _ upstream.Picker = (*powerOfTwo)(nil)

func newPowerOfTwo(ready []*upstream.Backend, opts Options) upstream.Picker {
	return &powerOfTwo{ready: ready, rand: opts.Rand}
}

func (p *powerOfTwo) Pick(uint64) *upstream.Backend {
	n := len(p.ready)
	if n == 1 {
		return p.ready[0]
	}
	// Draw j from the n-1 others and skip over i, so the two differ.
	i := reduce(p.rand(), n)
	j := reduce(p.rand(), n-1)
	if j >= i {
		j++
	}
	a, b := p.ready[i], p.ready[j]
	wa, wb := int64(a.EffectiveWeight), int64(b.EffectiveWeight)
	la, lb := a.Active.Load()*wb, b.Active.Load()*wa
	// On equal load the heavier backend wins, so that weights still count
	// when both are idle.
	if lb < la || (lb == la && wb > wa) {
		return b
	}
	return a
}
