package balance

import "github.com/strata-lb/strata/internal/upstream"

func init() { Register("wlc", newWeightedLeastConn) }

// weightedLeastConn sends new work to the backend with the least
// Active/weight (LVS wlc). Like LVS it compares by cross-multiplication,
// Active_a × weight_b < Active_b × weight_a, which is exact where a
// division would round.
type weightedLeastConn struct{ scan }

var _ upstream.Picker = (*weightedLeastConn)(nil)

func newWeightedLeastConn(ready []*upstream.Backend, _ Options) upstream.Picker {
	return &weightedLeastConn{scan{ready: ready}}
}

func (l *weightedLeastConn) Pick(uint64) *upstream.Backend {
	n := len(l.ready)
	start := l.start()
	best := l.ready[start]
	bestActive, bestWeight := best.Active.Load(), int64(best.EffectiveWeight)
	for k := 1; k < n; k++ {
		b := l.ready[(start+k)%n]
		a, w := b.Active.Load(), int64(b.EffectiveWeight)
		if a*bestWeight < bestActive*w {
			best, bestActive, bestWeight = b, a, w
		}
	}
	return best
}
