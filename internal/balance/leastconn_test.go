package balance

import (
	"math"
	"testing"
)

func TestLeastConnectionFamily(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		algo    string
		weights []int
		active  []int64
		want    string
	}{
		{"lc takes the fewest in flight", "lc", []int{1, 1, 1}, []int64{5, 2, 7}, "b01"},
		{"lc ignores weights", "lc", []int{10, 1, 1}, []int64{3, 2, 9}, "b01"},
		{"wlc divides by weight", "wlc", []int{1, 3}, []int64{2, 5}, "b01"},        // 2/1 > 5/3
		{"wlc is not lc", "wlc", []int{1, 3}, []int64{1, 4}, "b00"},                // 1/1 < 4/3
		{"wlc prefers the idle backend", "wlc", []int{1, 3}, []int64{0, 1}, "b00"}, // 0 < 1/3
		{"sed counts the new request", "sed", []int{1, 3}, []int64{0, 1}, "b01"},   // 1/1 > 2/3
		{"sed when all are busy", "sed", []int{2, 1, 1}, []int64{4, 1, 2}, "b01"},  // 5/2 > 2/1 < 3/1
		{"nq sends to an idle backend first", "nq", []int{1, 3}, []int64{0, 1}, "b00"},
		{"nq falls back to sed", "nq", []int{1, 3}, []int64{1, 2}, "b01"}, // 2/1 > 3/3
		{"p2c of two takes the less loaded", "p2c", []int{1, 1}, []int64{3, 1}, "b01"},
		{"p2c weighs its two", "p2c", []int{1, 4}, []int64{1, 3}, "b01"}, // 1/1 > 3/4
		{"p2c breaks a tie by weight", "p2c", []int{1, 4}, []int64{0, 0}, "b01"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			ready := mkBackends(tc.weights...)
			for i, a := range tc.active {
				ready[i].Active.Store(a)
			}
			p := build(t, tc.algo, ready, Options{Rand: seeded(2)})
			// Many picks, so that every rotation of the scan's start and
			// every random pair is tried.
			for i := range 100 {
				if got := p.Pick(uint64(i)).Name; got != tc.want {
					t.Fatalf("pick %d: got %s, want %s", i, got, tc.want)
				}
			}
		})
	}
}

// TestPowerOfTwoNeverPicksTheBusiest checks what the two choices promise
// with more than two backends: the most loaded backend never wins, since
// any other backend beats it, and the two choices are distinct.
func TestPowerOfTwoNeverPicksTheBusiest(t *testing.T) {
	ready := mkBackends(1, 1, 1, 1)
	ready[2].Active.Store(9)
	p := build(t, "p2c", ready, Options{Rand: seeded(5)})
	got := map[string]int{}
	for range 10_000 {
		got[p.Pick(0).Name]++
	}
	if got["b02"] != 0 || len(got) != 3 {
		t.Fatalf("picks = %v, want b00, b01 and b03 only", got)
	}
}

// TestTiesShareLoad checks that equally loaded, equally weighted backends
// share new work: exactly for the scanning pickers, whose scan starts in
// turn, and within sampling noise for p2c.
func TestTiesShareLoad(t *testing.T) {
	for _, tc := range []struct {
		desc string
		algo string
		tol  float64
	}{
		{"lc", "lc", 0},
		{"wlc", "wlc", 0},
		{"sed", "sed", 0},
		{"nq, all idle", "nq", 0},
		{"p2c", "p2c", 0.01},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			const n, picks = 3, 30_000
			p := build(t, tc.algo, mkBackends(2, 2, 2), Options{Rand: seeded(3)})
			got := map[string]int{}
			for range picks {
				got[p.Pick(0).Name]++
			}
			for name, c := range got {
				if d := math.Abs(float64(c)/picks - 1.0/n); d > tc.tol {
					t.Errorf("%s took %d of %d picks", name, c, picks)
				}
			}
			if len(got) != n {
				t.Errorf("picks = %v, want all %d backends", got, n)
			}
		})
	}
}
