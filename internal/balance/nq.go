package balance

import "github.com/strata-lb/strata/internal/upstream"

func init() { Register("nq", newNeverQueue) }

// neverQueue sends new work to an idle backend when there is one, whatever
// its weight, and otherwise falls back to shortest expected delay (LVS nq):
// a request never waits behind another while a server sits idle.
type neverQueue struct{ scan }

var _ upstream.Picker = (*neverQueue)(nil)

func newNeverQueue(ready []*upstream.Backend, _ Options) upstream.Picker {
	return &neverQueue{scan{ready: ready}}
}

func (l *neverQueue) Pick(uint64) *upstream.Backend {
	n := len(l.ready)
	start := l.start()
	for k := range n {
		if b := l.ready[(start+k)%n]; b.Active.Load() <= 0 {
			return b
		}
	}
	return l.sed(start)
}
