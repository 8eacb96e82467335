package upstream

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is an injected clock. The pool's own refresh timer may call Now
// from another goroutine, hence the lock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// modPicker picks ready[key % len(ready)]: enough to see what a snapshot
// offers without depending on package balance.
type modPicker []*Backend

func (m modPicker) Pick(key uint64) *Backend { return m[key%uint64(len(m))] }

func modBuilder(ready []*Backend) Picker { return modPicker(ready) }

func newTestPool(t *testing.T, opts Options, specs ...Spec) *Pool {
	t.Helper()
	if opts.Builder == nil {
		opts.Builder = modBuilder
	}
	p := NewPool("web", opts)
	t.Cleanup(p.Close)
	if err := p.Update(specs); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustLookup returns the named backend of the current snapshot.
func mustLookup(t *testing.T, p *Pool, name string) *Backend {
	t.Helper()
	b := p.Snapshot().Lookup(name)
	if b == nil {
		t.Fatalf("no backend %q", name)
	}
	return b
}

func readyNames(s *Snapshot) []string {
	var n []string
	for _, b := range s.Ready {
		n = append(n, b.Name)
	}
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestUpdateKeepsStayingBackends(t *testing.T) {
	p := newTestPool(t, Options{}, Spec{Name: "a", Addr: "10.0.0.1:80", Weight: 1}, Spec{Name: "b", Addr: "10.0.0.2:80", Weight: 1})
	must(t, p.SetHealthy("a", false))
	old := mustLookup(t, p, "a")
	old.Active.Store(3)
	old.Requests.Add(7)

	must(t, p.Update([]Spec{
		{Name: "a", Addr: "10.0.0.1:8080", Weight: 4, Zone: "z1"},
		{Name: "c", Addr: "10.0.0.3:80", Weight: 2},
	}))
	a := mustLookup(t, p, "a")
	if a.Stats != old.Stats || a.Active.Load() != 3 || a.Requests.Load() != 7 {
		t.Errorf("a lost its counters across Update")
	}
	if a.Healthy {
		t.Errorf("a lost its health across Update")
	}
	if a.Addr != "10.0.0.1:8080" || a.Weight != 4 || a.Zone != "z1" {
		t.Errorf("a's spec was not updated: %+v", a.Spec)
	}
	if p.Snapshot().Lookup("b") != nil {
		t.Errorf("b stayed after Update removed it")
	}
	c := mustLookup(t, p, "c")
	if !c.Healthy || c.Stats == nil || c.Stats == a.Stats {
		t.Errorf("c did not start healthy with its own counters")
	}
	if got := readyNames(p.Snapshot()); !slices.Equal(got, []string{"c"}) {
		t.Errorf("ready = %v, want [c]", got)
	}
}

func TestUpdateKeepsEjection(t *testing.T) {
	clk := newClock()
	p := newTestPool(t, Options{Now: clk.Now}, Spec{Addr: "a", Weight: 1}, Spec{Addr: "b", Weight: 1})
	must(t, p.Eject("a", clk.Now().Add(time.Minute)))
	must(t, p.Update([]Spec{{Addr: "a", Weight: 2}, {Addr: "b", Weight: 1}}))
	if !mustLookup(t, p, "a").Ejected {
		t.Fatal("Update re-admitted an ejected backend")
	}
}

func TestUpdateRejectsBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		desc  string
		specs []Spec
	}{
		{"duplicate name", []Spec{{Name: "a", Addr: "x:1"}, {Name: "a", Addr: "x:2"}}},
		{"duplicate address without names", []Spec{{Addr: "x:1"}, {Addr: "x:1"}}},
		{"negative weight", []Spec{{Addr: "x:1", Weight: -1}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			p := newTestPool(t, Options{}, Spec{Addr: "keep:1", Weight: 1})
			v := p.Snapshot().Version
			if err := p.Update(tc.specs); err == nil {
				t.Fatal("Update accepted bad specs")
			}
			if s := p.Snapshot(); s.Version != v || s.Lookup("keep:1") == nil {
				t.Fatal("a rejected Update changed the pool")
			}
		})
	}
}

func TestNameDefaultsToAddr(t *testing.T) {
	p := newTestPool(t, Options{}, Spec{Addr: "10.0.0.1:80", Weight: 1})
	if b := p.Snapshot().Lookup("10.0.0.1:80"); b == nil || b.Pool != "web" {
		t.Fatalf("Lookup by address = %v", b)
	}
}

func TestLookup(t *testing.T) {
	p := newTestPool(t, Options{}, Spec{Addr: "c", Weight: 1}, Spec{Addr: "a", Weight: 1}, Spec{Addr: "b", Weight: 1})
	s := p.Snapshot()
	if !sort.SliceIsSorted(s.All, func(i, j int) bool { return s.All[i].Name < s.All[j].Name }) {
		t.Fatalf("All is not sorted by name")
	}
	for _, tc := range []struct {
		desc, name string
		found      bool
	}{
		{"first", "a", true},
		{"middle", "b", true},
		{"last", "c", true},
		{"before all", "0", false},
		{"between", "bb", false},
		{"after all", "d", false},
		{"empty", "", false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			b := s.Lookup(tc.name)
			if (b != nil) != tc.found || (b != nil && b.Name != tc.name) {
				t.Fatalf("Lookup(%q) = %v, found want %v", tc.name, b, tc.found)
			}
		})
	}
	if (&Snapshot{}).Lookup("a") != nil {
		t.Fatal("Lookup on an empty snapshot found something")
	}
}

func TestEmptyPool(t *testing.T) {
	p := NewPool("web", Options{Builder: modBuilder})
	defer p.Close()
	if s := p.Snapshot(); s == nil || s.Picker != nil || p.Pick(1) != nil {
		t.Fatal("an empty pool must have a snapshot and pick nil")
	}
	if err := p.SetWeight("nope", 1); err == nil {
		t.Fatal("SetWeight on an unknown backend succeeded")
	}
}

func TestSlowStart(t *testing.T) {
	clk := newClock()
	p := newTestPool(t, Options{Now: clk.Now, SlowStart: 10 * time.Second}, Spec{Addr: "a", Weight: 100})
	// Each step acts on the pool and then checks b's effective weight and
	// status; a weight of -1 skips the check.
	steps := []struct {
		desc   string
		do     func()
		weight int
		status string
	}{
		{"a pool's first backends take full load at once", func() {}, -1, ""},
		{"a backend joining a running pool starts near 0", func() {
			must(t, p.Update([]Spec{{Addr: "a", Weight: 100}, {Addr: "b", Weight: 100}}))
		}, 1, "slow-start"},
		{"a quarter of the way", func() { clk.Advance(2500 * time.Millisecond); p.Refresh() }, 25, "slow-start"},
		{"just short of the end", func() { clk.Advance(7499 * time.Millisecond); p.Refresh() }, 99, "slow-start"},
		{"the end", func() { clk.Advance(time.Millisecond); p.Refresh() }, 100, "up"},
		{"unhealthy takes nothing", func() { must(t, p.SetHealthy("b", false)) }, 0, "unhealthy"},
		{"recovery ramps again", func() { must(t, p.SetHealthy("b", true)) }, 1, "slow-start"},
		{"half way", func() { clk.Advance(5 * time.Second); p.Refresh() }, 50, "slow-start"},
		{"a weight change applies to the ramp", func() { must(t, p.SetWeight("b", 10)) }, 5, "slow-start"},
		{"draining takes nothing", func() { must(t, p.SetState("b", StateDraining)) }, 0, "draining"},
		{"back up by SetState ramps again", func() { must(t, p.SetState("b", StateUp)) }, 1, "slow-start"},
		{"down by Update", func() {
			must(t, p.Update([]Spec{{Addr: "a", Weight: 100}, {Addr: "b", Weight: 100, State: StateDown}}))
		}, 0, "down"},
		{"back up by Update ramps again", func() {
			clk.Advance(time.Hour)
			must(t, p.Update([]Spec{{Addr: "a", Weight: 100}, {Addr: "b", Weight: 100}}))
		}, 1, "slow-start"},
	}
	for _, s := range steps {
		s.do()
		if a := mustLookup(t, p, "a"); a.EffectiveWeight != 100 {
			t.Fatalf("%s: a's effective weight %d, want 100 throughout", s.desc, a.EffectiveWeight)
		}
		if s.weight < 0 {
			continue
		}
		b := mustLookup(t, p, "b")
		if b.EffectiveWeight != s.weight || b.Status() != s.status {
			t.Fatalf("%s: b's effective weight %d (%s), want %d (%s)", s.desc, b.EffectiveWeight, b.Status(), s.weight, s.status)
		}
		if inReady := slices.Contains(readyNames(p.Snapshot()), "b"); inReady != (s.weight > 0) {
			t.Fatalf("%s: b ready = %v with effective weight %d", s.desc, inReady, s.weight)
		}
	}
}

func TestSlowStartOff(t *testing.T) {
	p := newTestPool(t, Options{}, Spec{Addr: "a", Weight: 3})
	must(t, p.Update([]Spec{{Addr: "a", Weight: 3}, {Addr: "b", Weight: 7}}))
	if b := mustLookup(t, p, "b"); b.EffectiveWeight != 7 {
		t.Fatalf("without slow start b's effective weight is %d, want 7", b.EffectiveWeight)
	}
}

// TestSlowStartEdges covers ramps the arithmetic once got wrong: a period
// shorter than ten ticks of the clock, and a weight so large that weight ×
// elapsed nanoseconds overflows 64 bits.
func TestSlowStartEdges(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		ramp    time.Duration
		weight  int
		elapsed time.Duration
		want    int
	}{
		{"a ramp of a few nanoseconds", 5, 10, 2, 4},
		{"a huge weight half way", time.Hour, 1 << 40, 30 * time.Minute, 1 << 39},
		{"an ordinary weight a tenth of the way", time.Minute, 50, 6 * time.Second, 5},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			clk := newClock()
			p := newTestPool(t, Options{Now: clk.Now, SlowStart: tc.ramp}, Spec{Addr: "a", Weight: 1})
			must(t, p.Update([]Spec{{Addr: "a", Weight: 1}, {Addr: "b", Weight: tc.weight}}))
			clk.Advance(tc.elapsed)
			p.Refresh()
			if got := mustLookup(t, p, "b").EffectiveWeight; got != tc.want {
				t.Fatalf("effective weight %d, want %d", got, tc.want)
			}
		})
	}
}

func TestEjectExpires(t *testing.T) {
	for _, tc := range []struct {
		desc      string
		slowStart time.Duration
		// weightBack is b's effective weight the moment the ejection ends.
		weightBack int
	}{
		{"without slow start", 0, 10},
		{"with slow start, ramping from the end of the ejection", 10 * time.Second, 1},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			clk := newClock()
			p := newTestPool(t, Options{Now: clk.Now, SlowStart: tc.slowStart}, Spec{Addr: "a", Weight: 10}, Spec{Addr: "b", Weight: 10})
			must(t, p.Eject("b", clk.Now().Add(30*time.Second)))
			check := func(when string, ejected bool, weight int) {
				t.Helper()
				b := mustLookup(t, p, "b")
				if b.Ejected != ejected || b.EffectiveWeight != weight {
					t.Fatalf("%s: ejected %v, effective weight %d; want %v, %d", when, b.Ejected, b.EffectiveWeight, ejected, weight)
				}
				if ejected && b.Status() != "ejected" {
					t.Fatalf("%s: status %s, want ejected", when, b.Status())
				}
			}
			check("at once", true, 0)
			clk.Advance(29 * time.Second)
			p.Refresh()
			check("a second before the end", true, 0)
			clk.Advance(time.Second)
			p.Refresh()
			check("at the end", false, tc.weightBack)
			if tc.slowStart > 0 {
				clk.Advance(tc.slowStart / 2)
				p.Refresh()
				check("half a ramp later", false, 5)
			}
		})
	}
	p := newTestPool(t, Options{}, Spec{Addr: "a", Weight: 1})
	if err := p.Eject("nope", time.Now()); err == nil {
		t.Fatal("Eject of an unknown backend succeeded")
	}
}

// TestEjectExpiresByItself uses the real clock: nobody calls Refresh, so
// only the pool's own timer can re-admit the backend.
func TestEjectExpiresByItself(t *testing.T) {
	p := newTestPool(t, Options{}, Spec{Addr: "a", Weight: 1}, Spec{Addr: "b", Weight: 1})
	back := make(chan struct{}, 1)
	p.Subscribe(func(s *Snapshot) {
		if b := s.Lookup("b"); b != nil && !b.Ejected {
			select {
			case back <- struct{}{}:
			default:
			}
		}
	})
	must(t, p.Eject("b", time.Now().Add(20*time.Millisecond)))
	// Eject itself publishes a snapshot with b ejected, which must not
	// have signalled.
	select {
	case <-back:
		t.Fatal("b was not ejected")
	default:
	}
	select {
	case <-back:
	case <-time.After(5 * time.Second):
		t.Fatal("the pool did not re-admit b by itself")
	}
	if mustLookup(t, p, "b").EffectiveWeight != 1 {
		t.Fatal("b came back without its weight")
	}
}

func TestSetWeight(t *testing.T) {
	p := newTestPool(t, Options{}, Spec{Addr: "a", Weight: 1}, Spec{Addr: "b", Weight: 1})
	for _, tc := range []struct {
		desc    string
		name    string
		weight  int
		wantErr bool
		status  string
		ready   []string
	}{
		{"raise", "b", 5, false, "up", []string{"a", "b"}},
		{"zero takes no traffic", "b", 0, false, "weight-0", []string{"a"}},
		{"back from zero", "b", 2, false, "up", []string{"a", "b"}},
		{"negative is refused", "b", -1, true, "up", []string{"a", "b"}},
		{"unknown backend", "nope", 1, true, "up", []string{"a", "b"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if err := p.SetWeight(tc.name, tc.weight); (err != nil) != tc.wantErr {
				t.Fatalf("SetWeight error = %v, want error %v", err, tc.wantErr)
			}
			b := mustLookup(t, p, "b")
			if !tc.wantErr && (b.Weight != tc.weight || b.EffectiveWeight != tc.weight) {
				t.Fatalf("weight %d, effective %d; want %d", b.Weight, b.EffectiveWeight, tc.weight)
			}
			if b.Status() != tc.status {
				t.Fatalf("status %s, want %s", b.Status(), tc.status)
			}
			if got := readyNames(p.Snapshot()); !slices.Equal(got, tc.ready) {
				t.Fatalf("ready = %v, want %v", got, tc.ready)
			}
		})
	}
}

func TestSetState(t *testing.T) {
	for _, tc := range []struct {
		desc  string
		state State
		ready bool
	}{
		{"up", StateUp, true},
		{"down", StateDown, false},
		{"draining", StateDraining, false},
		{"maintenance", StateMaintenance, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			p := newTestPool(t, Options{}, Spec{Addr: "a", Weight: 1}, Spec{Addr: "b", Weight: 1})
			must(t, p.SetState("b", tc.state))
			b := mustLookup(t, p, "b")
			if b.State != tc.state || b.Status() != tc.desc {
				t.Fatalf("state %v, status %s; want %v", b.State, b.Status(), tc.state)
			}
			if got := slices.Contains(readyNames(p.Snapshot()), "b"); got != tc.ready {
				t.Fatalf("ready = %v, want %v", got, tc.ready)
			}
		})
	}
	p := newTestPool(t, Options{}, Spec{Addr: "a", Weight: 1})
	if err := p.SetState("nope", StateDown); err == nil {
		t.Fatal("SetState of an unknown backend succeeded")
	}
}

func TestSubscribeSeesEveryVersionInOrder(t *testing.T) {
	p := newTestPool(t, Options{}, Spec{Addr: "a", Weight: 1})
	var versions []uint64
	p.Subscribe(func(s *Snapshot) { versions = append(versions, s.Version) })
	start := p.Snapshot().Version
	must(t, p.SetWeight("a", 2))
	must(t, p.SetHealthy("a", false))
	p.Refresh()
	if want := []uint64{start + 1, start + 2, start + 3}; !slices.Equal(versions, want) {
		t.Fatalf("versions %v, want %v", versions, want)
	}
}

func TestState(t *testing.T) {
	for _, s := range []State{StateUp, StateDown, StateDraining, StateMaintenance} {
		got, err := ParseState(s.String())
		if err != nil || got != s {
			t.Errorf("ParseState(%q) = %v, %v", s.String(), got, err)
		}
		if txt, _ := s.MarshalText(); string(txt) != s.String() {
			t.Errorf("MarshalText = %q, want %q", txt, s.String())
		}
	}
	if _, err := ParseState("sideways"); err == nil {
		t.Error("ParseState accepted an unknown state")
	}
	if s := State(9).String(); s != "state(9)" {
		t.Errorf("State(9) = %s", s)
	}
}

// TestConcurrentReadersAndWriter runs data-plane readers against a writer
// that keeps changing the pool; under -race it proves that readers need no
// lock, and the checks prove that they never see a half-built snapshot.
func TestConcurrentReadersAndWriter(t *testing.T) {
	clk := newClock()
	p := newTestPool(t, Options{Now: clk.Now, SlowStart: time.Second}, Spec{Addr: "a", Weight: 1})
	var stop atomic.Bool
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			var last uint64
			for key := uint64(r); !stop.Load(); key++ {
				s := p.Snapshot()
				if s.Version < last {
					errs <- fmt.Errorf("version %d after %d", s.Version, last)
					return
				}
				last = s.Version
				for _, b := range s.Ready {
					if !b.Available() {
						errs <- fmt.Errorf("version %d: unavailable %s in Ready", s.Version, b.Name)
						return
					}
				}
				if (s.Picker == nil) != (len(s.Ready) == 0) {
					errs <- fmt.Errorf("version %d: picker and ready set disagree", s.Version)
					return
				}
				if b := p.Pick(key); b != nil {
					b.Active.Add(1)
					b.Requests.Add(1)
					b.Active.Add(-1)
					_ = b.Status()
				}
				_ = s.Lookup("b")
			}
		})
	}
	for i := range 2000 {
		specs := []Spec{{Addr: "a", Weight: 1 + i%3}, {Addr: "b", Weight: i % 2}}
		if i%5 == 0 {
			specs = append(specs, Spec{Addr: "c", Weight: 2})
		}
		must(t, p.Update(specs))
		must(t, p.SetHealthy("a", i%7 != 0))
		must(t, p.SetState("a", State(i%4)))
		must(t, p.Eject("b", clk.Now().Add(time.Duration(i%3)*time.Second)))
		clk.Advance(100 * time.Millisecond)
		p.Refresh()
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	var all []error
	for e := range errs {
		all = append(all, e)
	}
	if err := errors.Join(all...); err != nil {
		t.Fatal(err)
	}
}

func TestEjectionNeverEmptiesAPool(t *testing.T) {
	clk := newClock()
	p := newTestPool(t, Options{Now: clk.Now}, Spec{Addr: "a", Weight: 3}, Spec{Addr: "b", Weight: 1}, Spec{Addr: "c", Weight: 1, State: StateDraining})
	must(t, p.Eject("a", clk.Now().Add(time.Minute)))
	if got := strings.Join(readyNames(p.Snapshot()), ","); got != "b" {
		t.Fatalf("one of two ejected: ready %q, want b", got)
	}
	must(t, p.Eject("b", clk.Now().Add(time.Minute)))
	// Both up backends ejected: both take traffic again at full weight, and
	// the draining one stays out.
	s := p.Snapshot()
	if got := strings.Join(readyNames(s), ","); got != "a,b" {
		t.Fatalf("all ejected: ready %q, want a,b", got)
	}
	if a := s.Lookup("a"); !a.Ejected || a.EffectiveWeight != 3 {
		t.Fatalf("a: ejected %v, effective weight %d; want still marked ejected, weight 3", a.Ejected, a.EffectiveWeight)
	}
	// An unhealthy backend is not brought back this way.
	must(t, p.SetHealthy("b", false))
	if got := strings.Join(readyNames(p.Snapshot()), ","); got != "a" {
		t.Fatalf("all ejected, b unhealthy: ready %q, want a", got)
	}
}
