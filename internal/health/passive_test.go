package health

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

func TestBackoff(t *testing.T) {
	base, limit := 30*time.Second, 5*time.Minute
	tests := []struct {
		desc string
		n    int
		want time.Duration
	}{
		{desc: "first ejection is the base", n: 0, want: 30 * time.Second},
		{desc: "second doubles", n: 1, want: time.Minute},
		{desc: "third doubles again", n: 2, want: 2 * time.Minute},
		{desc: "fourth", n: 3, want: 4 * time.Minute},
		{desc: "fifth is capped", n: 4, want: 5 * time.Minute},
		{desc: "a long streak stays capped without overflow", n: 200, want: 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := backoff(base, limit, tt.n); got != tt.want {
				t.Fatalf("backoff(%v, %v, %d) = %v, want %v", base, limit, tt.n, got, tt.want)
			}
		})
	}
}

func TestPassiveOptionsFrom(t *testing.T) {
	zero, three := 0, 3
	tests := []struct {
		desc string
		in   *config.Passive
		want int
	}{
		{desc: "absent section is on with 5 fails", in: nil, want: 5},
		{desc: "unset max_fails is 5", in: &config.Passive{}, want: 5},
		{desc: "max_fails 0 turns it off", in: &config.Passive{MaxFails: &zero}, want: 0},
		{desc: "max_fails is read", in: &config.Passive{MaxFails: &three}, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := PassiveOptionsFrom(tt.in).MaxFails; got != tt.want {
				t.Fatalf("MaxFails = %d, want %d", got, tt.want)
			}
		})
	}
}

// passiveFixture is a real pool with one backend "b" and passive ejection
// on an injected clock.
type passiveFixture struct {
	clk  *fakeClock
	pool *upstream.Pool
	p    *Passive
}

func newPassiveFixture(t *testing.T, o PassiveOptions) *passiveFixture {
	t.Helper()
	clk := newFakeClock()
	pool := upstream.NewPool("web", upstream.Options{Now: clk.Now})
	t.Cleanup(pool.Close)
	if err := pool.Update([]upstream.Spec{{Name: "b", Addr: "127.0.0.1:1", Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	o.Clock = clk
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return &passiveFixture{clk: clk, pool: pool, p: NewPassive(pool, o)}
}

// backend returns b as the current snapshot has it, as a data plane would.
func (f *passiveFixture) backend() *upstream.Backend { return f.pool.Snapshot().Lookup("b") }

func (f *passiveFixture) fail(n int) {
	for range n {
		f.p.Failure(f.backend())
	}
}

// advance moves time and lets the pool publish what time changed, as its
// own timer does in production.
func (f *passiveFixture) advance(d time.Duration) {
	f.clk.Advance(d)
	f.pool.Refresh()
}

// ejectedFor fails b MaxFails times and measures how long the pool keeps it
// out, checking one nanosecond before and at the end.
func (f *passiveFixture) ejectedFor(t *testing.T, want time.Duration) {
	t.Helper()
	f.fail(f.p.opts.MaxFails)
	if !f.backend().Ejected {
		t.Fatalf("backend not ejected after %d failures", f.p.opts.MaxFails)
	}
	f.advance(want - time.Nanosecond)
	if !f.backend().Ejected {
		t.Fatalf("backend back before %v", want)
	}
	f.advance(time.Nanosecond)
	if f.backend().Ejected {
		t.Fatalf("backend still ejected after %v", want)
	}
}

func TestPassiveEjectionGrowsAndResets(t *testing.T) {
	f := newPassiveFixture(t, PassiveOptions{MaxFails: 5, BaseEjection: 30 * time.Second, MaxEjection: 5 * time.Minute})
	for i, d := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		f.ejectedFor(t, d)
		if got := f.backend().Ejections.Load(); got != int64(i+1) {
			t.Fatalf("Ejections = %d after %d ejections", got, i+1)
		}
	}
	// Healthy for less than ResetAfter (= MaxEjection): the streak goes on.
	f.advance(5*time.Minute - time.Second)
	f.ejectedFor(t, 5*time.Minute)
	// Healthy for ResetAfter: the next ejection starts from the base again,
	// while the operator's counter keeps counting.
	f.advance(5 * time.Minute)
	f.ejectedFor(t, 30*time.Second)
	if got := f.backend().Ejections.Load(); got != 8 {
		t.Fatalf("Ejections = %d, want 8: the counter never goes down", got)
	}
}

func TestPassiveCounting(t *testing.T) {
	tests := []struct {
		desc        string
		maxFails    int
		events      string // f: failure, s: success
		wantEjected bool
		wantCount   int64 // ConsecutiveFailures afterwards
	}{
		{desc: "fewer than max fails keep it in", maxFails: 5, events: "ffff", wantCount: 4},
		{desc: "max fails eject and reset the count", maxFails: 5, events: "fffff", wantEjected: true},
		{desc: "a success resets the count", maxFails: 5, events: "ffffsffff", wantCount: 4},
		{desc: "failures while ejected do not extend", maxFails: 2, events: "fffff", wantEjected: true, wantCount: 1},
		{desc: "max fails 0 only counts", maxFails: 0, events: "ffffffffff", wantCount: 10},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f := newPassiveFixture(t, PassiveOptions{MaxFails: tt.maxFails})
			for _, e := range tt.events {
				if e == 'f' {
					f.p.Failure(f.backend())
				} else {
					f.p.Success(f.backend())
				}
			}
			b := f.backend()
			if b.Ejected != tt.wantEjected {
				t.Fatalf("ejected = %v, want %v", b.Ejected, tt.wantEjected)
			}
			if got := b.ConsecutiveFailures.Load(); got != tt.wantCount {
				t.Fatalf("ConsecutiveFailures = %d, want %d", got, tt.wantCount)
			}
			wantEjections := int64(0)
			if tt.wantEjected {
				wantEjections = 1
			}
			if got := b.Ejections.Load(); got != wantEjections {
				t.Fatalf("Ejections = %d, want %d", got, wantEjections)
			}
		})
	}
}

func TestPassiveConcurrentFailuresEjectOnce(t *testing.T) {
	f := newPassiveFixture(t, PassiveOptions{MaxFails: 5})
	b := f.backend() // every goroutine holds the same, pre-ejection view
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				f.p.Failure(b)
			}
		})
	}
	wg.Wait()
	if got := b.Ejections.Load(); got != 1 {
		t.Fatalf("Ejections = %d after a burst of failures, want 1", got)
	}
	if !f.backend().Ejected {
		t.Fatal("backend not ejected")
	}
}

func TestPassiveIgnoresRemovedBackend(t *testing.T) {
	f := newPassiveFixture(t, PassiveOptions{MaxFails: 1})
	old := f.backend()
	if err := f.pool.Update(nil); err != nil {
		t.Fatal(err)
	}
	f.p.Failure(old)
	if got := old.Ejections.Load(); got != 0 {
		t.Fatalf("a backend gone from the pool was ejected %d times", got)
	}
}

func TestPassiveNilIsOff(t *testing.T) {
	var p *Passive
	b := &upstream.Backend{Stats: new(upstream.Stats)}
	p.Failure(b)
	p.Success(b)
	if b.ConsecutiveFailures.Load() != 0 {
		t.Fatal("a nil Passive counted a failure")
	}
}

func TestPassiveAllocs(t *testing.T) {
	f := newPassiveFixture(t, PassiveOptions{MaxFails: 1 << 30})
	b := f.backend()
	tests := []struct {
		desc string
		fn   func()
	}{
		{desc: "success with no failures", fn: func() { f.p.Success(b) }},
		{desc: "success after a failure", fn: func() { f.p.Failure(b); f.p.Success(b) }},
		{desc: "failure below the threshold", fn: func() { f.p.Failure(b) }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.fn); n != 0 {
				t.Fatalf("%v allocations per call, want 0", n)
			}
		})
	}
}

func BenchmarkPassiveSuccess(b *testing.B) {
	pool := upstream.NewPool("web", upstream.Options{})
	defer pool.Close()
	if err := pool.Update([]upstream.Spec{{Addr: "127.0.0.1:1", Weight: 1}}); err != nil {
		b.Fatal(err)
	}
	p := NewPassive(pool, PassiveOptions{MaxFails: 5})
	be := pool.Snapshot().All[0]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Success(be)
		}
	})
}
