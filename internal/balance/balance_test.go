package balance

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

// seeded returns a deterministic random source for Options.Rand, so that a
// failing test fails the same way every time.
func seeded(seed uint64) func() uint64 {
	return rand.New(rand.NewPCG(seed, seed^0x5eed)).Uint64
}

// mkBackends makes ready backends named b00, b01 … with the given weights,
// as a snapshot would hand them to a picker.
func mkBackends(weights ...int) []*upstream.Backend {
	bs := make([]*upstream.Backend, len(weights))
	for i, w := range weights {
		name := fmt.Sprintf("b%02d", i)
		bs[i] = &upstream.Backend{
			Spec:            upstream.Spec{Name: name, Addr: name + ":80", Weight: w},
			Healthy:         true,
			EffectiveWeight: w,
			Stats:           new(upstream.Stats),
		}
	}
	return bs
}

// mkN makes n backends of weight 1.
func mkN(n int) []*upstream.Backend {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return mkBackends(w...)
}

func build(t testing.TB, name string, ready []*upstream.Backend, opts Options) upstream.Picker {
	t.Helper()
	b, err := Builder(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b(ready)
}

func TestNames(t *testing.T) {
	want := []string{
		"dh", "hrw", "ketama", "lc", "maglev", "mh", "nq", "p2c", "random",
		"rendezvous", "ring", "rr", "sed", "sh", "wlc", "wrandom", "wrr",
	}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	if _, err := Builder("nope", Options{}); err == nil {
		t.Fatal("Builder accepted an unknown algorithm")
	}
}

// TestPoolSendsNoNewTrafficToUnavailable builds a real pool, the way data
// planes do, with backends in every state that must take no new traffic,
// and checks that every algorithm only ever picks the two that are up —
// and picks both of them.
func TestPoolSendsNoNewTrafficToUnavailable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			bld, err := Builder(name, Options{Rand: seeded(1)})
			if err != nil {
				t.Fatal(err)
			}
			p := upstream.NewPool("web", upstream.Options{Builder: bld, Now: clock})
			defer p.Close()
			err = p.Update([]upstream.Spec{
				{Name: "up1", Addr: "10.0.0.1:80", Weight: 2},
				{Name: "up2", Addr: "10.0.0.2:80", Weight: 2},
				{Name: "down", Addr: "10.0.0.3:80", Weight: 5, State: upstream.StateDown},
				{Name: "draining", Addr: "10.0.0.4:80", Weight: 5, State: upstream.StateDraining},
				{Name: "maintenance", Addr: "10.0.0.5:80", Weight: 5, State: upstream.StateMaintenance},
				{Name: "unhealthy", Addr: "10.0.0.6:80", Weight: 5},
				{Name: "ejected", Addr: "10.0.0.7:80", Weight: 5},
				{Name: "weight-0", Addr: "10.0.0.8:80", Weight: 0},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.SetHealthy("unhealthy", false); err != nil {
				t.Fatal(err)
			}
			if err := p.Eject("ejected", now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			// Every state must show as itself, or the test would not be
			// testing what it says.
			for _, b := range p.Snapshot().All {
				if want := b.Name; want[:2] != "up" && b.Status() != want {
					t.Fatalf("backend %s has status %s", b.Name, b.Status())
				}
			}
			got := map[string]int{}
			for i := range 10000 {
				b := p.Pick(uint64(i))
				if b == nil {
					t.Fatalf("pick %d: no backend", i)
				}
				got[b.Name]++
			}
			if len(got) != 2 || got["up1"] == 0 || got["up2"] == 0 {
				t.Fatalf("picks = %v, want only and both of up1 and up2", got)
			}
		})
	}
}

// TestEmptyPoolPicksNil checks the one case where a pick has no answer.
func TestEmptyPoolPicksNil(t *testing.T) {
	bld, err := Builder("maglev", Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := upstream.NewPool("web", upstream.Options{Builder: bld})
	defer p.Close()
	if err := p.Update([]upstream.Spec{{Addr: "10.0.0.1:80", Weight: 1, State: upstream.StateDown}}); err != nil {
		t.Fatal(err)
	}
	if b := p.Pick(1); b != nil {
		t.Fatalf("Pick on a pool with nothing ready = %s, want nil", b.Name)
	}
}

// TestPickDoesNotAllocate holds every algorithm to the hot-path rule: a
// pick allocates nothing.
func TestPickDoesNotAllocate(t *testing.T) {
	ready := mkBackends(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			p := build(t, name, ready, Options{})
			var key uint64
			if n := testing.AllocsPerRun(1000, func() { p.Pick(key); key++ }); n != 0 {
				t.Fatalf("Pick allocates %v times per call", n)
			}
		})
	}
}

func BenchmarkPick(b *testing.B) {
	ready := mkBackends(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for i, bk := range ready {
		bk.Active.Store(int64(i % 4))
	}
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			p := build(b, name, ready, Options{})
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := rand.Uint64()
				for pb.Next() {
					if p.Pick(key) == nil {
						b.Fatal("no backend")
					}
					key++
				}
			})
		})
	}
}

// BenchmarkBuild measures what a snapshot costs each algorithm; pools
// publish one per health change and ten per slow-start ramp.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{10, 100} {
		ready := mkN(n)
		for i, bk := range ready {
			bk.EffectiveWeight = 1 + i%7
		}
		for _, name := range []string{"wrr", "sh", "ketama", "maglev"} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				bld, err := Builder(name, Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					bld(ready)
				}
			})
		}
	}
}
