package balance

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/strata-lb/strata/internal/upstream"
)

func init() {
	Register("ketama", newKetama)
	Register("ring", newKetama)
}

const (
	// ketamaPointsPerWeight is how many points a backend puts on the ring
	// per unit of weight (after dividing weights by their GCD), as in
	// libketama. A backend's share of the ring deviates from its weight by
	// about 1/sqrt(points) relative, so 160 points give ±8%.
	ketamaPointsPerWeight = 160
	// ketamaMaxPoints caps the ring at a few megabytes when weights are
	// large and coprime; points are then scaled down proportionally.
	ketamaMaxPoints = 1 << 18
)

// ketama is a consistent-hash ring: every backend hashes "name-i" onto a
// 64-bit circle once per point, and a key belongs to the first point at or
// after its own hash. When a backend leaves, only the keys on its arcs move.
type ketama struct {
	ready  []*upstream.Backend
	points []uint64 // sorted
	owner  []uint32 // owner[i] indexes ready for points[i]
}

var _ upstream.Picker = (*ketama)(nil)

func newKetama(ready []*upstream.Backend, _ Options) upstream.Picker {
	ready = byName(ready)
	g, units := 0, 0
	for _, b := range ready {
		g = gcd(g, b.EffectiveWeight)
	}
	for _, b := range ready {
		units += b.EffectiveWeight / g
	}
	scale := float64(ketamaPointsPerWeight)
	if units*ketamaPointsPerWeight > ketamaMaxPoints {
		scale = float64(ketamaMaxPoints) / float64(units)
	}
	type point struct {
		hash  uint64
		owner uint32
	}
	var ring []point
	var buf []byte
	for i, b := range ready {
		n := max(1, int(float64(b.EffectiveWeight/g)*scale))
		for j := range n {
			buf = strconv.AppendInt(append(append(buf[:0], b.Name...), '-'), int64(j), 10)
			ring = append(ring, point{xxhash.Sum64(buf), uint32(i)})
		}
	}
	// Ties between two backends' points are broken by name (ready is
	// sorted), so that every node builds the same ring.
	slices.SortFunc(ring, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.owner, b.owner))
	})
	k := &ketama{ready: ready, points: make([]uint64, len(ring)), owner: make([]uint32, len(ring))}
	for i, p := range ring {
		k.points[i], k.owner[i] = p.hash, p.owner
	}
	return k
}

func (k *ketama) Pick(key uint64) *upstream.Backend {
	h := mix64(key)
	lo, hi := 0, len(k.points)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if k.points[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(k.points) {
		lo = 0 // past the last point: wrap around the circle
	}
	return k.ready[k.owner[lo]]
}
