package balance

import (
	"math/bits"
	"slices"
	"strings"

	"github.com/strata-lb/strata/internal/upstream"
)

// mix64 spreads a caller's key over all 64 bits before a hashing picker
// uses it. Callers may pass small integers (a port, a shard number), and
// adjacent integers would otherwise land in adjacent table slots or on the
// same arc of a ring. It is SplitMix64's finalizer, a bijection, after
// adding the golden-ratio increment so that 0 does not map to 0.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// reduce maps a uniformly distributed 64-bit x onto [0, n) with a multiply
// instead of a division (Lemire's fast range reduction).
func reduce(x uint64, n int) int {
	hi, _ := bits.Mul64(x, uint64(n))
	return int(hi)
}

// byName returns a copy of ready sorted by name. Hashing pickers build
// their tables from it so that two nodes given the same backends in a
// different order build identical tables and send a key to the same place.
func byName(ready []*upstream.Backend) []*upstream.Backend {
	s := slices.Clone(ready)
	slices.SortFunc(s, func(a, b *upstream.Backend) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// smoothSequence returns one full cycle of nginx's smooth weighted round
// robin over weights: every step adds each weight to its current value,
// picks the largest current (the first one on a tie) and takes the total
// off the winner. Over sum(weights) steps each index i appears exactly
// weights[i] times, spread as evenly as the weights allow. The cost is
// O(sum(weights) × len(weights)), paid once per snapshot.
func smoothSequence(weights []int) []uint32 {
	total := 0
	for _, w := range weights {
		total += w
	}
	seq := make([]uint32, 0, total)
	current := make([]int, len(weights))
	for range total {
		best := 0
		for i, w := range weights {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		seq = append(seq, uint32(best))
	}
	return seq
}
