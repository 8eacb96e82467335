package balance

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
	"github.com/strata-lb/strata/internal/upstream"
)

func init() {
	Register("maglev", newMaglev)
	Register("mh", newMaglev)
}

// maglevSkipSeed seeds the second hash of a backend's name, from which its
// skip is drawn; the first (offset) hash is unseeded xxhash.
const maglevSkipSeed = 0x6d61676c65760001

// maglev is Google's Maglev hashing (NSDI 2016, section 3.4): every backend
// walks its own permutation of a prime-sized table (offset and skip from
// two hashes of its name) and the backends take turns claiming the next
// free slot of their permutation until the table is full. Lookups are one
// array index, every backend owns an almost equal share of slots, and
// when a backend leaves few keys move besides its own. Turns are weighted
// as in Katran: each round a backend adds its weight to a credit and takes
// a turn whenever the credit reaches the largest weight, so slots come out
// in proportion to weight.
type maglev struct {
	ready []*upstream.Backend
	table []uint32
}

var _ upstream.Picker = (*maglev)(nil)

func newMaglev(ready []*upstream.Backend, opts Options) upstream.Picker {
	ready, table := MaglevTable(ready, opts.TableSize)
	return &maglev{ready: ready, table: table}
}

// MaglevTable builds the Maglev lookup table of the backends ready over a
// table of at least size slots (rounded up to a prime): ready comes back
// sorted by name, and each slot holds an index into it. The XDP data plane
// (internal/l4/xdp) loads this very table into the kernel, so that the
// in-kernel and user-space balancers agree slot for slot.
func MaglevTable(ready []*upstream.Backend, size int) ([]*upstream.Backend, []uint32) {
	ready = byName(ready)
	// A permutation only covers the whole table when the size is prime;
	// any other size could leave a backend walking forever over taken
	// slots, so round up to a prime.
	m := nextPrime(max(size, len(ready), 2))
	n := len(ready)
	pos := make([]uint64, n)  // the next slot of each backend's permutation
	skip := make([]uint64, n) // its stride, in [1, m-1]
	credit := make([]int64, n)
	maxWeight := int64(0)
	for i, b := range ready {
		pos[i] = xxhash.Sum64String(b.Name) % uint64(m)
		d := xxhash.NewWithSeed(maglevSkipSeed)
		d.WriteString(b.Name)
		skip[i] = d.Sum64()%uint64(m-1) + 1
		maxWeight = max(maxWeight, int64(b.EffectiveWeight))
	}
	const empty = ^uint32(0)
	table := make([]uint32, m)
	for i := range table {
		table[i] = empty
	}
	for filled := 0; filled < m; {
		for i, b := range ready {
			if credit[i] += int64(b.EffectiveWeight); credit[i] < maxWeight {
				continue
			}
			credit[i] -= maxWeight
			// Walk the permutation to its next free slot. Since pos and
			// skip are both below m, a subtraction replaces the modulo.
			p := pos[i]
			for table[p] != empty {
				if p += skip[i]; p >= uint64(m) {
					p -= uint64(m)
				}
			}
			table[p] = uint32(i)
			if p += skip[i]; p >= uint64(m) {
				p -= uint64(m)
			}
			pos[i] = p
			if filled++; filled == m {
				break
			}
		}
	}
	return ready, table
}

func (g *maglev) Pick(key uint64) *upstream.Backend {
	return g.ready[g.table[mix64(key)%uint64(len(g.table))]]
}

// nextPrime returns the least prime ≥ n; table sizes are small enough for
// trial division.
func nextPrime(n int) int {
	for ; ; n++ {
		if isPrime(n) {
			return n
		}
	}
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// MaglevFingerprint is a 64-bit hash of a Maglev table as MaglevTable
// returns it: the backends (name and address, in the table's order) and
// which of them each slot holds. Two nodes whose tables have the same
// fingerprint send every flow to the same backend, which is what a
// cluster of l4 nodes behind ECMP relies on; an operator compares the
// fingerprints of `strata ctl services` across nodes.
func MaglevFingerprint(sorted []*upstream.Backend, table []uint32) uint64 {
	d := xxhash.New()
	for _, b := range sorted {
		d.WriteString(b.Name)
		d.Write([]byte{0})
		d.WriteString(b.Addr)
		d.Write([]byte{0})
	}
	buf := make([]byte, 4*len(table))
	for i, t := range table {
		binary.LittleEndian.PutUint32(buf[4*i:], t)
	}
	d.Write(buf)
	return d.Sum64()
}
