package health

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// StatusSetter receives the monitor's conclusions. *upstream.Pool
// satisfies it.
type StatusSetter interface {
	SetHealthy(name string, healthy bool) error
}

// Pool is what a Monitor needs of a backend pool: its membership, and a
// place to report health. *upstream.Pool satisfies it.
type Pool interface {
	StatusSetter
	Name() string
	Snapshot() *upstream.Snapshot
	// Subscribe calls fn with every new snapshot, under the pool's lock.
	Subscribe(fn func(*upstream.Snapshot))
}

var _ Pool = (*upstream.Pool)(nil)

// MonitorOptions time and judge the checks of one pool. Zero fields take
// the defaults given below.
type MonitorOptions struct {
	// Interval between two checks of one backend (default 5s).
	Interval time.Duration
	// Jitter adds a random delay in [0, Jitter) to every interval, so
	// that checks of many backends drift apart (default 0 here;
	// MonitorOptionsFrom applies the config's default of Interval/10).
	Jitter time.Duration
	// Timeout bounds one check (default 2s).
	Timeout time.Duration
	// Rise consecutive passes mark an unhealthy backend healthy (default 2).
	Rise int
	// Fall consecutive failures mark a healthy backend unhealthy (default 3).
	Fall int
	// Clock is the time source (default SystemClock).
	Clock Clock
	// Rand returns a random number in [0, n) for n > 0 (default
	// math/rand/v2.Int64N). Tests pin it.
	Rand func(n int64) int64
	// Logger receives health transitions (default slog.Default()).
	Logger *slog.Logger
}

// MonitorOptionsFrom reads the timing and thresholds of hc, with the
// defaults documented on config.HealthCheck for fields left zero.
func MonitorOptionsFrom(hc *config.HealthCheck) MonitorOptions {
	if hc == nil {
		hc = &config.HealthCheck{}
	}
	o := MonitorOptions{
		Interval: hc.Interval.D(),
		Timeout:  hc.Timeout.D(),
		Rise:     hc.Rise,
		Fall:     hc.Fall,
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if hc.Jitter != nil {
		o.Jitter = hc.Jitter.D()
	} else {
		o.Jitter = o.Interval / 10
	}
	return o
}

// CheckStatus is what the monitor knows of one backend, for the admin API.
type CheckStatus struct {
	// Addr is the address checked.
	Addr string `json:"addr"`
	// Healthy is the monitor's conclusion, after rise and fall.
	Healthy bool `json:"healthy"`
	// Checks counts the checks done since the backend joined.
	Checks uint64 `json:"checks"`
	// LastCheck is when the last check started; zero before the first.
	LastCheck time.Time `json:"last_check"`
	// LastDuration is how long the last check took.
	LastDuration time.Duration `json:"last_duration_ns"`
	// LastOK is the result of the last check.
	LastOK bool `json:"last_ok"`
	// LastError is the last check's error; empty when it passed.
	LastError string `json:"last_error,omitempty"`
	// Consecutive counts the checks in a row with LastOK's result.
	Consecutive int `json:"consecutive"`
}

// Monitor runs active checks against every backend of one pool and is the
// only place where health is decided: it counts consecutive results, applies
// rise and fall, and tells the pool about transitions and nothing else.
type Monitor struct {
	pool    Pool
	checker Checker
	opts    MonitorOptions
	log     *slog.Logger

	changed chan struct{} // pool membership may have changed
	running atomic.Bool

	mu      sync.Mutex
	targets map[string]*target
}

// target is one backend under watch: one goroutine and its status.
type target struct {
	name, addr string
	cancel     context.CancelFunc
	done       chan struct{}

	mu sync.Mutex
	st CheckStatus
}

// NewMonitor makes a monitor for pool that checks with c. It subscribes to
// the pool at once; the subscription outlives the monitor (the pool has no
// way to unsubscribe) but costs only a non-blocking channel send.
func NewMonitor(pool Pool, c Checker, o MonitorOptions) *Monitor {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Rise <= 0 {
		o.Rise = 2
	}
	if o.Fall <= 0 {
		o.Fall = 3
	}
	if o.Clock == nil {
		o.Clock = SystemClock
	}
	if o.Rand == nil {
		o.Rand = rand.Int64N
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &Monitor{
		pool:    pool,
		checker: c,
		opts:    o,
		log:     o.Logger.With("pool", pool.Name()),
		changed: make(chan struct{}, 1),
		targets: map[string]*target{},
	}
	// The callback runs under the pool's lock, so it must neither block
	// nor read the pool: it only leaves a note for Run.
	pool.Subscribe(func(*upstream.Snapshot) {
		select {
		case m.changed <- struct{}{}:
		default:
		}
	})
	return m
}

// Run checks the pool's backends until ctx ends, following the pool as
// backends join, leave or change address. It returns once every check
// goroutine has stopped. A Monitor runs once.
func (m *Monitor) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return fmt.Errorf("health monitor of pool %s: already running", m.pool.Name())
	}
	var wg sync.WaitGroup
	defer func() {
		m.mu.Lock()
		for _, t := range m.targets {
			t.cancel()
		}
		m.mu.Unlock()
		wg.Wait()
	}()
	m.reconcile(ctx, &wg)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.changed:
			m.reconcile(ctx, &wg)
		}
	}
}

// Status returns what the monitor knows of the backend called name.
func (m *Monitor) Status(name string) (CheckStatus, bool) {
	m.mu.Lock()
	t, ok := m.targets[name]
	m.mu.Unlock()
	if !ok {
		return CheckStatus{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st, true
}

// Statuses returns the status of every backend under watch, by name.
func (m *Monitor) Statuses() map[string]CheckStatus {
	m.mu.Lock()
	ts := make([]*target, 0, len(m.targets))
	for _, t := range m.targets {
		ts = append(ts, t)
	}
	m.mu.Unlock()
	out := make(map[string]CheckStatus, len(ts))
	for _, t := range ts {
		t.mu.Lock()
		out[t.name] = t.st
		t.mu.Unlock()
	}
	return out
}

// reconcile makes the set of check loops match the pool's backends.
func (m *Monitor) reconcile(ctx context.Context, wg *sync.WaitGroup) {
	snap := m.pool.Snapshot()
	var stale []*target
	m.mu.Lock()
	for name, t := range m.targets {
		if b := snap.Lookup(name); b == nil || b.Addr != t.addr {
			t.cancel()
			stale = append(stale, t)
			delete(m.targets, name)
		}
	}
	m.mu.Unlock()
	// Wait for replaced loops to end, so that a check of an old address
	// cannot report on a backend that has moved to a new one.
	for _, t := range stale {
		<-t.done
	}
	// Read the pool again: a stale loop may have changed a backend's health
	// while we waited, and a new loop starts from the pool's current view.
	snap = m.pool.Snapshot()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range snap.All {
		if _, ok := m.targets[b.Name]; ok {
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		t := &target{
			name:   b.Name,
			addr:   b.Addr,
			cancel: cancel,
			done:   make(chan struct{}),
			st:     CheckStatus{Addr: b.Addr, Healthy: b.Healthy},
		}
		m.targets[b.Name] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(t.done)
			m.loop(tctx, t)
		}()
	}
}

// loop checks one backend every interval until ctx ends. The first check
// comes after a random part of the interval, so that a pool's backends are
// not all checked at the same instant.
func (m *Monitor) loop(ctx context.Context, t *target) {
	delay := m.random(m.opts.Interval)
	for {
		tm := m.opts.Clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case <-tm.C():
		}
		m.checkOnce(ctx, t)
		delay = m.opts.Interval + m.random(m.opts.Jitter)
	}
}

func (m *Monitor) random(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(m.opts.Rand(int64(n)))
}

// checkOnce runs one check, folds its result into the backend's status and
// reports a transition to the pool.
func (m *Monitor) checkOnce(ctx context.Context, t *target) {
	cctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	start := m.opts.Clock.Now()
	err := m.checker.Check(cctx, t.addr)
	cancel()
	if ctx.Err() != nil {
		// The monitor is stopping or the backend left: a check cut short
		// says nothing about the backend.
		return
	}
	t.mu.Lock()
	from := t.st.Healthy
	flipped := step(&t.st, err == nil, m.opts.Rise, m.opts.Fall)
	t.st.LastCheck = start
	t.st.LastDuration = m.opts.Clock.Now().Sub(start)
	t.st.LastError = ""
	if err != nil {
		t.st.LastError = err.Error()
	}
	n := t.st.Consecutive
	t.mu.Unlock()
	if !flipped {
		return
	}
	reason := fmt.Sprintf("%d consecutive passes", n)
	if err != nil {
		reason = fmt.Sprintf("%d consecutive failures, last: %v", n, err)
	}
	m.log.Info("health transition", "backend", t.name, "addr", t.addr,
		"from", healthWord(from), "to", healthWord(!from), "reason", reason)
	if err := m.pool.SetHealthy(t.name, !from); err != nil {
		// The backend left the pool between the check and now; its loop
		// is about to be stopped.
		m.log.Debug("health transition not applied", "backend", t.name, "err", err)
	}
}

// step folds one check result into st and reports whether the backend's
// health flipped: fall failures in a row take a healthy backend down, rise
// passes in a row bring an unhealthy one back, as in HAProxy.
func step(st *CheckStatus, ok bool, rise, fall int) bool {
	if st.Checks == 0 || ok != st.LastOK {
		st.Consecutive = 0
	}
	st.Checks++
	st.LastOK = ok
	st.Consecutive++
	switch {
	case st.Healthy && !ok && st.Consecutive >= fall:
		st.Healthy = false
		return true
	case !st.Healthy && ok && st.Consecutive >= rise:
		st.Healthy = true
		return true
	}
	return false
}

func healthWord(healthy bool) string {
	if healthy {
		return "up"
	}
	return "down"
}
