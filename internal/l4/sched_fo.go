package l4

import "github.com/strata-lb/strata/internal/upstream"

// failover is LVS's weighted failover (fo): every new connection goes to
// the available backend with the highest weight, the first by name on a
// tie, so a lighter backend only takes traffic when the heavier ones are
// gone or over their thresholds.
type failover struct{}

var _ scheduler = failover{}

func (failover) pick(snap *upstream.Snapshot, _ flow, ok func(*upstream.Backend) bool) *upstream.Backend {
	var best *upstream.Backend
	for _, b := range snap.Ready {
		if ok(b) && (best == nil || b.EffectiveWeight > best.EffectiveWeight) {
			best = b
		}
	}
	return best
}
