package health

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// scripted is a Checker whose result per address the test sets.
type scripted struct {
	mu    sync.Mutex
	fail  map[string]bool
	calls map[string]int
}

func newScripted() *scripted {
	return &scripted{fail: map[string]bool{}, calls: map[string]int{}}
}

func (s *scripted) Check(_ context.Context, addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[addr]++
	if s.fail[addr] {
		return fmt.Errorf("scripted failure of %s", addr)
	}
	return nil
}

func (s *scripted) set(addr string, ok bool) {
	s.mu.Lock()
	s.fail[addr] = !ok
	s.mu.Unlock()
}

func (s *scripted) callsTo(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[addr]
}

// recordingPool is a real pool that also records what the monitor told it.
type recordingPool struct {
	*upstream.Pool
	mu    sync.Mutex
	calls []string
}

func (p *recordingPool) SetHealthy(name string, healthy bool) error {
	p.mu.Lock()
	p.calls = append(p.calls, fmt.Sprintf("%s=%v", name, healthy))
	p.mu.Unlock()
	return p.Pool.SetHealthy(name, healthy)
}

func (p *recordingPool) setHealthyCalls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

const interval = 5 * time.Second

// startMonitor runs a monitor over a real pool with backends at addrs
// (named after them). The first check of each backend comes one tick
// before a full interval, so every Advance(interval) runs exactly one
// check per backend.
func startMonitor(t *testing.T, c Checker, rise, fall int, addrs ...string) (*Monitor, *recordingPool, *fakeClock, func()) {
	t.Helper()
	clk := newFakeClock()
	pool := &recordingPool{Pool: upstream.NewPool("web", upstream.Options{Now: clk.Now})}
	t.Cleanup(pool.Close)
	updatePool(t, pool.Pool, addrs...)
	m := NewMonitor(pool, c, MonitorOptions{
		Interval: interval,
		Timeout:  time.Second,
		Rise:     rise,
		Fall:     fall,
		Clock:    clk,
		Rand:     func(n int64) int64 { return n - 1 },
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	waitFor(t, fmt.Sprintf("%d check loops to wait", len(addrs)), func() bool { return clk.Pending() == len(addrs) })
	return m, pool, clk, stop
}

func updatePool(t *testing.T, p *upstream.Pool, addrs ...string) {
	t.Helper()
	specs := make([]upstream.Spec, len(addrs))
	for i, a := range addrs {
		specs[i] = upstream.Spec{Addr: a, Weight: 1}
	}
	if err := p.Update(specs); err != nil {
		t.Fatal(err)
	}
}

// tick moves time by one interval and waits until all n loops have
// checked and re-armed their timers.
func tick(t *testing.T, clk *fakeClock, n int) {
	t.Helper()
	clk.Advance(interval)
	waitFor(t, "check loops to re-arm", func() bool { return clk.Pending() == n })
}

func TestStep(t *testing.T) {
	tests := []struct {
		desc       string
		rise, fall int
		results    string // p: pass, f: fail
		want       string // health after each result: u or d
	}{
		{desc: "passes keep a healthy backend up", rise: 2, fall: 3, results: "ppp", want: "uuu"},
		{desc: "fall failures take it down", rise: 2, fall: 3, results: "fff", want: "uud"},
		{desc: "a pass resets the failure count", rise: 2, fall: 3, results: "ffpfff", want: "uuuuud"},
		{desc: "rise passes bring it back", rise: 2, fall: 1, results: "fpp", want: "ddu"},
		{desc: "a failure resets the pass count", rise: 2, fall: 1, results: "fpfpp", want: "ddddu"},
		{desc: "rise and fall of one flip every time", rise: 1, fall: 1, results: "fpfp", want: "dudu"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			st := CheckStatus{Healthy: true}
			got := ""
			for i, r := range tt.results {
				before := st.Healthy
				flipped := step(&st, r == 'p', tt.rise, tt.fall)
				if flipped != (before != st.Healthy) {
					t.Fatalf("result %d: step reported flipped=%v but health went %v -> %v", i, flipped, before, st.Healthy)
				}
				got += map[bool]string{true: "u", false: "d"}[st.Healthy]
			}
			if got != tt.want {
				t.Fatalf("health after %q = %q, want %q", tt.results, got, tt.want)
			}
		})
	}
}

func TestMonitorRiseFall(t *testing.T) {
	tests := []struct {
		desc       string
		rise, fall int
		results    string   // p: pass, f: fail, one per interval
		want       string   // pool health after each check: u or d
		wantCalls  []string // SetHealthy calls, transitions only
	}{
		{desc: "healthy backend stays up and the pool is not bothered", rise: 2, fall: 3,
			results: "pppp", want: "uuuu"},
		{desc: "three failures take it down, two passes bring it back", rise: 2, fall: 3,
			results: "fffppp", want: "uudduu",
			wantCalls: []string{"b=false", "b=true"}},
		{desc: "flapping below the thresholds changes nothing", rise: 2, fall: 3,
			results: "ffpffpffp", want: "uuuuuuuuu"},
		{desc: "down backend needs rise passes in a row", rise: 3, fall: 1,
			results: "fppfpppf", want: "ddddddud",
			wantCalls: []string{"b=false", "b=true", "b=false"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if len(tt.want) != len(tt.results) {
				t.Fatalf("bad table: %d results, %d wants", len(tt.results), len(tt.want))
			}
			c := newScripted()
			m, pool, clk, _ := startMonitor(t, c, tt.rise, tt.fall, "b")
			for i, r := range tt.results {
				c.set("b", r == 'p')
				tick(t, clk, 1)
				wantHealthy := tt.want[i] == 'u'
				if got := pool.Snapshot().Lookup("b").Healthy; got != wantHealthy {
					t.Fatalf("after result %d (%q of %q): pool says healthy=%v, want %v", i, r, tt.results, got, wantHealthy)
				}
				st, ok := m.Status("b")
				if !ok || st.Healthy != wantHealthy || st.LastOK != (r == 'p') || st.Checks != uint64(i+1) {
					t.Fatalf("after result %d: status %+v (found %v)", i, st, ok)
				}
				if (st.LastError != "") == st.LastOK {
					t.Fatalf("after result %d: LastError %q with LastOK %v", i, st.LastError, st.LastOK)
				}
			}
			if got := pool.setHealthyCalls(); fmt.Sprint(got) != fmt.Sprint(tt.wantCalls) {
				t.Fatalf("SetHealthy calls = %v, want %v", got, tt.wantCalls)
			}
		})
	}
}

func TestMonitorFollowsMembership(t *testing.T) {
	c := newScripted()
	m, pool, clk, _ := startMonitor(t, c, 1, 1, "a", "b")

	updatePool(t, pool.Pool, "b", "c")
	waitFor(t, "monitor to follow the pool", func() bool {
		_, a := m.Status("a")
		_, c := m.Status("c")
		return !a && c && clk.Pending() == 2
	})
	tick(t, clk, 2)
	if n := c.callsTo("a"); n != 0 {
		t.Fatalf("removed backend a was checked %d times", n)
	}
	if c.callsTo("b") != 1 || c.callsTo("c") != 1 {
		t.Fatalf("checks: b %d, c %d; want one each", c.callsTo("b"), c.callsTo("c"))
	}

	// A backend that changes address is checked at the new one, and a
	// failure there is reported under its name.
	if err := pool.Update([]upstream.Spec{{Name: "b", Addr: "b2", Weight: 1}, {Addr: "c", Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "monitor to follow the new address", func() bool {
		st, _ := m.Status("b")
		return st.Addr == "b2" && clk.Pending() == 2
	})
	c.set("b2", false)
	tick(t, clk, 2)
	if pool.Snapshot().Lookup("b").Healthy {
		t.Fatal("b failed at its new address but the pool still has it healthy")
	}
	if got := len(m.Statuses()); got != 2 {
		t.Fatalf("Statuses has %d backends, want 2", got)
	}
}

func TestMonitorStopsCleanly(t *testing.T) {
	before := runtime.NumGoroutine()
	c := newScripted()
	m, _, clk, stop := startMonitor(t, c, 1, 1, "a", "b", "c")
	tick(t, clk, 3)
	stop()
	if err := m.Run(context.Background()); err == nil {
		t.Fatal("a second Run succeeded")
	}
	waitFor(t, "check goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
	if n := clk.Pending(); n != 0 {
		t.Fatalf("%d timers still armed after stop", n)
	}
}

// TestMonitorRealClock runs the monitor as production does, with the real
// clock and a TCP check against a real listener.
func TestMonitorRealClock(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	pool := upstream.NewPool("web", upstream.Options{})
	defer pool.Close()
	updatePool(t, pool, addr)
	m := NewMonitor(pool, TCP{}, MonitorOptions{
		Interval: 10 * time.Millisecond,
		Timeout:  time.Second,
		Rise:     1,
		Fall:     2,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "a passing check", func() bool { st, _ := m.Status(addr); return st.LastOK })
	l.Close()
	waitFor(t, "the pool to mark the backend down", func() bool { return !pool.Snapshot().Lookup(addr).Healthy })
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	defer l.Close()
	waitFor(t, "the pool to mark the backend up", func() bool { return pool.Snapshot().Lookup(addr).Healthy })
}

func TestMonitorOptionsFrom(t *testing.T) {
	j := config.Duration(0)
	tests := []struct {
		desc       string
		hc         *config.HealthCheck
		wantInt    time.Duration
		wantJitter time.Duration
	}{
		{desc: "nil takes the defaults", hc: nil, wantInt: 5 * time.Second, wantJitter: 500 * time.Millisecond},
		{desc: "jitter defaults to a tenth of the interval", hc: &config.HealthCheck{Interval: config.Duration(time.Second)},
			wantInt: time.Second, wantJitter: 100 * time.Millisecond},
		{desc: "explicit zero jitter is kept", hc: &config.HealthCheck{Interval: config.Duration(time.Second), Jitter: &j},
			wantInt: time.Second, wantJitter: 0},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			o := MonitorOptionsFrom(tt.hc)
			if o.Interval != tt.wantInt || o.Jitter != tt.wantJitter {
				t.Fatalf("interval %v jitter %v, want %v and %v", o.Interval, o.Jitter, tt.wantInt, tt.wantJitter)
			}
		})
	}
}
