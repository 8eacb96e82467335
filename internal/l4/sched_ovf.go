package l4

import "github.com/strata-lb/strata/internal/upstream"

// overflow is LVS's overflow-connection scheduler (ovf): the backend with
// the highest weight takes connections while its active connections are
// fewer than its weight, then the next heaviest, and so on. When every
// backend is full there is no backend, and the sorry server (if any)
// takes the connection.
type overflow struct{}

var _ scheduler = overflow{}

func (overflow) pick(snap *upstream.Snapshot, _ flow, ok func(*upstream.Backend) bool) *upstream.Backend {
	var best *upstream.Backend
	for _, b := range snap.Ready {
		if !ok(b) || b.Active.Load() >= int64(b.EffectiveWeight) {
			continue
		}
		if best == nil || b.EffectiveWeight > best.EffectiveWeight {
			best = b
		}
	}
	return best
}
