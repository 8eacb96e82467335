package balance

import (
	"sync/atomic"

	"github.com/strata-lb/strata/internal/upstream"
)

func init() { Register("rr", newRoundRobin) }

// roundRobin hands out backends in turn, ignoring weights (LVS rr).
type roundRobin struct {
	ready []*upstream.Backend
	next  atomic.Uint64
}

var _ upstream.Picker = (*roundRobin)(nil)

func newRoundRobin(ready []*upstream.Backend, opts Options) upstream.Picker {
	r := &roundRobin{ready: ready}
	// A random start, for the reasons given in wrr.go.
	r.next.Store(opts.Rand())
	return r
}

func (r *roundRobin) Pick(uint64) *upstream.Backend {
	n := r.next.Add(1) - 1
	return r.ready[n%uint64(len(r.ready))]
}
