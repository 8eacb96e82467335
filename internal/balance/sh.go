package balance

import "github.com/strata-lb/strata/internal/upstream"

func init() { Register("sh", newBucketHash) }

// bucketsPerBackend sizes the bucket table of sh and dh. LVS uses 256
// buckets in all; 256 per backend keeps the rounding of weights to whole
// buckets below half a percent however many backends there are.
const bucketsPerBackend = 256

// bucketHash is LVS's source hashing scheduler (sh): a table of buckets,
// each owned by one backend in proportion to its weight, indexed by the
// hash of the client's address. The same client lands on the same backend
// for as long as the backends stay the same; unlike maglev or ketama, a
// change of backends reshuffles most keys, as it does in LVS.
type bucketHash struct {
	ready   []*upstream.Backend
	buckets []uint32
}

var _ upstream.Picker = (*bucketHash)(nil)

func newBucketHash(ready []*upstream.Backend, _ Options) upstream.Picker {
	ready = byName(ready)
	total := int64(0)
	for _, b := range ready {
		total += int64(b.EffectiveWeight)
	}
	// Each backend owns its weight's share of 256 × len(ready) buckets,
	// rounded to the nearest bucket and never fewer than one, in runs of
	// consecutive buckets: the key is mixed before use, so runs spread
	// keys exactly as well as interleaving would.
	size := int64(bucketsPerBackend * len(ready))
	h := &bucketHash{ready: ready, buckets: make([]uint32, 0, size+int64(len(ready)))}
	for i, b := range ready {
		n := max(1, (size*int64(b.EffectiveWeight)+total/2)/total)
		for range n {
			h.buckets = append(h.buckets, uint32(i))
		}
	}
	return h
}

func (h *bucketHash) Pick(key uint64) *upstream.Backend {
	return h.ready[h.buckets[reduce(mix64(key), len(h.buckets))]]
}
