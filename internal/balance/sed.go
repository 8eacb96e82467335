package balance

import "github.com/strata-lb/strata/internal/upstream"

func init() { Register("sed", newShortestExpectedDelay) }

// shortestExpectedDelay sends new work to the backend with the least
// (Active+1)/weight (LVS sed): the delay the new request would expect
// there. Unlike wlc it prefers the heavier of two idle backends.
type shortestExpectedDelay struct{ scan }

var _ upstream.Picker = (*shortestExpectedDelay)(nil)

func newShortestExpectedDelay(ready []*upstream.Backend, _ Options) upstream.Picker {
	return &shortestExpectedDelay{scan{ready: ready}}
}

func (l *shortestExpectedDelay) Pick(uint64) *upstream.Backend {
	return l.sed(l.start())
}

// sed scans ready from start for the least (Active+1)/weight, comparing by
// cross-multiplication; nq shares it.
func (s *scan) sed(start int) *upstream.Backend {
	n := len(s.ready)
	best := s.ready[start]
	bestDelay, bestWeight := best.Active.Load()+1, int64(best.EffectiveWeight)
	for k := 1; k < n; k++ {
		b := s.ready[(start+k)%n]
		d, w := b.Active.Load()+1, int64(b.EffectiveWeight)
		if d*bestWeight < bestDelay*w {
			best, bestDelay, bestWeight = b, d, w
		}
	}
	return best
}
