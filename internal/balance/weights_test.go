package balance

import (
	"math"
	"slices"
	"testing"
)

// shares picks n times (with keys 0 … n-1, so hashing pickers see n
// distinct keys) and returns each backend's share of the picks by name.
func shares(t *testing.T, name string, weights []int, n int) (got, want map[string]float64) {
	t.Helper()
	ready := mkBackends(weights...)
	p := build(t, name, ready, Options{Rand: seeded(7)})
	got, want = map[string]float64{}, map[string]float64{}
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, b := range ready {
		want[b.Name] = float64(weights[i]) / float64(total)
	}
	for k := range n {
		got[p.Pick(uint64(k)).Name] += 1 / float64(n)
	}
	return got, want
}

func TestWeightsHonoured(t *testing.T) {
	// Keys 0 … 99999 are adjacent small integers on purpose: hashing
	// pickers must mix them, or they would all fall into a few slots.
	const picks = 100_000
	weightSets := []struct {
		desc    string
		weights []int
	}{
		{"equal", []int{1, 1, 1, 1}},
		{"one two three", []int{1, 2, 3}},
		{"skewed", []int{1, 10, 100}},
		{"common divisor", []int{100, 200, 300, 400}},
		// Beyond wrr's cycle cap: the weights must be scaled, not cut.
		{"large coprime", []int{1_000_003, 999_983, 7}},
		{"many", []int{5, 1, 4, 2, 3, 5, 1, 4, 2, 3, 5, 1, 4, 2, 3, 5, 1, 4, 2, 3}},
	}
	algos := []struct {
		name string
		tol  float64
	}{
		// Exact up to rounding (wrr: a whole number of cycles; maglev,
		// sh, dh: slots rounded to a table of thousands) or up to sampling
		// noise, whose standard deviation over 100k picks is at most 0.16%.
		{"wrr", 0.01},
		{"wrandom", 0.01},
		{"maglev", 0.01},
		{"sh", 0.01},
		{"dh", 0.01},
		// Rendezvous wins each key with probability exactly weight/total;
		// only sampling noise remains, as for wrandom.
		{"rendezvous", 0.01},
		// A ring arc's share deviates from its weight by about
		// 1/sqrt(points) relative: ±8% at 160 points, which on a share of
		// 1/3 is ±2.7% absolute. 5% is about two standard deviations for
		// the widest share here; the hashes are fixed, so the test is
		// deterministic, not flaky.
		{"ketama", 0.05},
	}
	for _, a := range algos {
		for _, ws := range weightSets {
			t.Run(a.name+"/"+ws.desc, func(t *testing.T) {
				got, want := shares(t, a.name, ws.weights, picks)
				for name, w := range want {
					if d := math.Abs(got[name] - w); d > a.tol {
						t.Errorf("%s: share %.4f, want %.4f ± %.2f", name, got[name], w, a.tol)
					}
				}
			})
		}
	}
}

// TestUnweightedSpreadEvenly checks the algorithms that ignore weights:
// rr exactly, random within sampling noise.
func TestUnweightedSpreadEvenly(t *testing.T) {
	for _, tc := range []struct {
		desc string
		name string
		tol  float64
	}{
		{"round robin is exact", "rr", 1e-9},
		{"random is fair within noise", "random", 0.01},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, _ := shares(t, tc.name, []int{1, 5, 10, 20}, 100_000)
			for name, s := range got {
				if math.Abs(s-0.25) > tc.tol {
					t.Errorf("%s: share %.4f, want 0.25", name, s)
				}
			}
		})
	}
}

func TestWRRSequence(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		weights []int
		want    string
	}{
		// The example from nginx's commit that introduced smooth WRR.
		{"nginx's example", []int{5, 1, 1}, "aabacaa"},
		{"reduced by the common divisor", []int{50, 10, 10}, "aabacaa"},
		{"equal weights are round robin", []int{3, 3, 3}, "abc"},
		{"two to one", []int{2, 1}, "aba"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			// The cycle starts at a random place; pin it to the top.
			p := build(t, "wrr", mkBackends(tc.weights...), Options{Rand: func() uint64 { return 0 }})
			var got []byte
			// Two cycles, to see that the second repeats the first.
			for range 2 * len(tc.want) {
				got = append(got, 'a'+p.Pick(0).Name[2]-'0')
			}
			if want := tc.want + tc.want; string(got) != want {
				t.Fatalf("sequence %s, want %s", got, want)
			}
		})
	}
}

func TestWRRCycleIsCapped(t *testing.T) {
	ready := mkBackends(1_000_003, 999_983, 7, 1)
	w := wrrWeights(ready, maxWRRCycle)
	sum := 0
	for _, x := range w {
		sum += x
		if x < 1 {
			t.Fatalf("weights %v: a backend lost its turn", w)
		}
	}
	if sum > maxWRRCycle+len(w) {
		t.Fatalf("cycle of %d entries, want at most %d", sum, maxWRRCycle+len(w))
	}
	if !slices.Equal(wrrWeights(mkBackends(6, 4, 2), maxWRRCycle), []int{3, 2, 1}) {
		t.Fatal("weights not reduced by their common divisor")
	}
}

func TestKetamaRingIsCapped(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		weights []int
		want    int
	}{
		{"160 points per unit of weight", []int{1, 2, 3}, 960},
		{"units after the common divisor", []int{100, 200}, 480},
		{"capped when weights are large and coprime", []int{10_007, 10_009, 1}, ketamaMaxPoints},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			k := newKetama(mkBackends(tc.weights...), Options{}).(*ketama)
			// Scaling floors each backend's points, so a capped ring may
			// fall short of the cap by up to one point per backend.
			if n := len(k.points); n > tc.want || n < tc.want-len(tc.weights) {
				t.Fatalf("%d points, want %d", n, tc.want)
			}
		})
	}
}

func TestMaglevTableSize(t *testing.T) {
	for _, tc := range []struct {
		desc       string
		size, n    int
		wantLength int
	}{
		{"the default", 0, 3, 65537},
		{"a prime is kept", 251, 3, 251},
		{"a composite is rounded up to a prime", 1000, 3, 1009},
		{"never smaller than the backends", 5, 20, 23},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			bld, err := Builder("maglev", Options{TableSize: tc.size})
			if err != nil {
				t.Fatal(err)
			}
			g := bld(mkN(tc.n)).(*maglev)
			if len(g.table) != tc.wantLength {
				t.Fatalf("table of %d slots, want %d", len(g.table), tc.wantLength)
			}
			owners := map[uint32]bool{}
			for _, o := range g.table {
				owners[o] = true
			}
			if len(owners) != tc.n {
				t.Fatalf("%d of %d backends own slots", len(owners), tc.n)
			}
		})
	}
}
