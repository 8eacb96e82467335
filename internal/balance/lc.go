package balance

import (
	"sync/atomic"

	"github.com/strata-lb/strata/internal/upstream"
)

func init() { Register("lc", newLeastConn) }

// leastConn sends new work to the backend with the fewest connections or
// requests in flight, ignoring weights (LVS lc).
type leastConn struct{ scan }

var _ upstream.Picker = (*leastConn)(nil)

func newLeastConn(ready []*upstream.Backend, _ Options) upstream.Picker {
	return &leastConn{scan{ready: ready}}
}

func (l *leastConn) Pick(uint64) *upstream.Backend {
	n := len(l.ready)
	start := l.start()
	best := l.ready[start]
	bestActive := best.Active.Load()
	for k := 1; k < n; k++ {
		b := l.ready[(start+k)%n]
		if a := b.Active.Load(); a < bestActive {
			best, bestActive = b, a
		}
	}
	return best
}

// scan is the state the least-connection family shares. Each pick starts
// its scan at the next backend in turn: a strict comparison keeps the first
// of equally loaded backends, so a fixed start would pile every tie, and in
// particular every idle moment, onto the first backend in the list.
type scan struct {
	ready []*upstream.Backend
	next  atomic.Uint64
}

func (s *scan) start() int {
	return int((s.next.Add(1) - 1) % uint64(len(s.ready)))
}
