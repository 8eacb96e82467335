package upstream

import (
	"fmt"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Picker chooses a backend for one connection or request. Implementations
// live in package balance; one is built per snapshot, so it may precompute
// tables from the ready set and must not lock or allocate per pick. key is
// the request's hash (client address, URI, cookie …) for hashing pickers and
// is ignored by the others. Pick returns nil when no backend is ready.
type Picker interface {
	Pick(key uint64) *Backend
}

// PickerBuilder builds a Picker over the backends ready for new traffic,
// which are never empty and all have EffectiveWeight > 0.
type PickerBuilder func(ready []*Backend) Picker

// Snapshot is an immutable view of a pool. Data planes load it through an
// atomic pointer on every pick and never see a half-applied update.
type Snapshot struct {
	Pool    string
	Version uint64
	// All holds every backend, sorted by name.
	All []*Backend
	// Ready holds the backends that may take new traffic, in All's order.
	Ready []*Backend
	// Picker chooses among Ready; nil when Ready is empty.
	Picker Picker
}

// Pick chooses a backend for key, or returns nil when none is ready.
func (s *Snapshot) Pick(key uint64) *Backend {
	if s.Picker == nil {
		return nil
	}
	return s.Picker.Pick(key)
}

// Lookup returns the backend called name, or nil.
func (s *Snapshot) Lookup(name string) *Backend {
	i := sort.Search(len(s.All), func(i int) bool { return s.All[i].Name >= name })
	if i < len(s.All) && s.All[i].Name == name {
		return s.All[i]
	}
	return nil
}

// Options configure a Pool.
type Options struct {
	// Builder builds the picker of every snapshot.
	Builder PickerBuilder
	// SlowStart ramps a backend's weight from near 0 to its full weight
	// over this long after it recovers or joins (nginx's slow_start).
	// 0 turns the ramp off.
	SlowStart time.Duration
	// Now is the clock; time.Now when nil. Tests inject their own.
	Now func() time.Time
}

// member is the pool's private record of one backend.
type member struct {
	spec         Spec
	healthy      bool
	ejectedUntil time.Time
	rampFrom     time.Time // start of the slow-start ramp; zero when none
	stats        *Stats
}

// Pool is a named set of backends. Writers (providers, health monitors,
// the admin API, passive ejection) serialise on a mutex and publish a new
// snapshot; readers only load the current snapshot.
type Pool struct {
	name string
	opts Options

	snap atomic.Pointer[Snapshot]

	mu      sync.Mutex
	members map[string]*member
	version uint64
	timer   *time.Timer
	closed  bool
	subs    []func(*Snapshot)
}

// NewPool makes an empty pool.
func NewPool(name string, opts Options) *Pool {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Pool{name: name, opts: opts, members: map[string]*member{}}
	p.snap.Store(&Snapshot{Pool: name})
	return p
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Snapshot returns the current snapshot. It never returns nil.
func (p *Pool) Snapshot() *Snapshot { return p.snap.Load() }

// Pick chooses a backend from the current snapshot.
func (p *Pool) Pick(key uint64) *Backend { return p.snap.Load().Pick(key) }

// Subscribe calls fn with every snapshot published from now on, in order,
// with the pool's write lock held: fn must be quick and must not call back
// into the pool.
func (p *Pool) Subscribe(fn func(*Snapshot)) {
	p.mu.Lock()
	p.subs = append(p.subs, fn)
	p.mu.Unlock()
}

// Update replaces the pool's backends with specs, as a provider sees them.
// Backends that stay keep their health, counters and ejection; new ones
// start healthy, and ramp up when slow start is on and the pool already had
// backends (a pool's first backends take full load at once, as nginx does).
func (p *Pool) Update(specs []Spec) error {
	seen := make(map[string]bool, len(specs))
	for i := range specs {
		if specs[i].Name == "" {
			specs[i].Name = specs[i].Addr
		}
		if seen[specs[i].Name] {
			return fmt.Errorf("pool %s: duplicate backend %q", p.name, specs[i].Name)
		}
		seen[specs[i].Name] = true
		if specs[i].Weight < 0 {
			return fmt.Errorf("pool %s: backend %q: negative weight %d", p.name, specs[i].Name, specs[i].Weight)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	first := len(p.members) == 0
	next := make(map[string]*member, len(specs))
	for _, s := range specs {
		if m, ok := p.members[s.Name]; ok {
			if m.spec.State != StateUp && s.State == StateUp {
				m.rampFrom = now
			}
			m.spec = s
			next[s.Name] = m
			continue
		}
		m := &member{spec: s, healthy: true, stats: new(Stats)}
		if !first {
			m.rampFrom = now
		}
		next[s.Name] = m
	}
	p.members = next
	p.publishLocked()
	return nil
}

func (p *Pool) with(name string, fn func(m *member, now time.Time)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.members[name]
	if !ok {
		return fmt.Errorf("pool %s: no backend %q", p.name, name)
	}
	fn(m, p.opts.Now())
	p.publishLocked()
	return nil
}

// SetHealthy records what active health checks concluded. A backend that
// recovers enters slow start.
func (p *Pool) SetHealthy(name string, healthy bool) error {
	return p.with(name, func(m *member, now time.Time) {
		if healthy && !m.healthy {
			m.rampFrom = now
		}
		m.healthy = healthy
	})
}

// SetState sets a backend's administrative state (drain, maintenance …).
func (p *Pool) SetState(name string, st State) error {
	return p.with(name, func(m *member, now time.Time) {
		if st == StateUp && m.spec.State != StateUp {
			m.rampFrom = now
		}
		m.spec.State = st
	})
}

// SetWeight changes a backend's weight at run time.
func (p *Pool) SetWeight(name string, w int) error {
	if w < 0 {
		return fmt.Errorf("pool %s: backend %q: negative weight %d", p.name, name, w)
	}
	return p.with(name, func(m *member, _ time.Time) { m.spec.Weight = w })
}

// Eject keeps a backend out of new traffic until the given time (passive
// health checking). The pool re-admits it by itself, with slow start.
func (p *Pool) Eject(name string, until time.Time) error {
	return p.with(name, func(m *member, _ time.Time) {
		m.ejectedUntil = until
		m.rampFrom = until
	})
}

// Refresh republishes the snapshot if time has moved a ramp or an ejection
// on. The pool arranges its own refreshes with a timer; tests with an
// injected clock call it directly.
func (p *Pool) Refresh() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.publishLocked()
}

// Close stops the pool's timers.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
}

// publishLocked builds and stores a new snapshot and arms the timer for
// the next change that time alone will bring.
func (p *Pool) publishLocked() {
	now := p.opts.Now()
	p.version++
	s := &Snapshot{Pool: p.name, Version: p.version, All: make([]*Backend, 0, len(p.members))}
	var wake time.Duration
	for _, m := range p.members {
		b := &Backend{Spec: m.spec, Pool: p.name, Healthy: m.healthy, Stats: m.stats}
		b.Ejected = now.Before(m.ejectedUntil)
		if b.Ejected {
			wake = minPositive(wake, m.ejectedUntil.Sub(now))
		}
		if b.State == StateUp && b.Healthy && !b.Ejected {
			b.EffectiveWeight = b.Weight
			if ss := p.opts.SlowStart; ss > 0 && !m.rampFrom.IsZero() && b.Weight > 0 {
				if el := now.Sub(m.rampFrom); el < ss {
					// Ramp in tenths of the period so that a ramp costs
					// ten snapshots, not one per request.
					b.EffectiveWeight = max(1, rampWeight(b.Weight, el, ss))
					// A ramp shorter than ten clock ticks still needs a
					// step of at least one tick, or the modulo divides
					// by zero.
					step := max(ss/10, 1)
					wake = minPositive(wake, step-el%step)
				}
			}
		}
		s.All = append(s.All, b)
	}
	sort.Slice(s.All, func(i, j int) bool { return s.All[i].Name < s.All[j].Name })
	for _, b := range s.All {
		if b.Available() {
			s.Ready = append(s.Ready, b)
		}
	}
	if len(s.Ready) == 0 {
		// Passive ejection never empties a pool. When every backend that
		// is up and healthy has been ejected, the failures were most
		// likely the clients' or a shared dependency's, not the backends'
		// (Envoy's panic mode, nginx's reset of max_fails): send traffic
		// to all of them rather than to none.
		for _, b := range s.All {
			if b.Ejected && b.State == StateUp && b.Healthy && b.Weight > 0 {
				b.EffectiveWeight = b.Weight
				s.Ready = append(s.Ready, b)
			}
		}
	}
	if len(s.Ready) > 0 && p.opts.Builder != nil {
		s.Picker = p.opts.Builder(s.Ready)
	}
	p.snap.Store(s)
	for _, fn := range p.subs {
		fn(s)
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if wake > 0 && !p.closed {
		p.timer = time.AfterFunc(wake, p.Refresh)
	}
}

// rampWeight returns weight × elapsed / period for 0 ≤ elapsed < period.
// The product is taken in 128 bits: in 64 a weight of a million ramping
// over three hours already overflows (3 hours is 1.08e13 ns).
func rampWeight(weight int, elapsed, period time.Duration) int {
	if elapsed <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(weight), uint64(elapsed))
	// hi < period because elapsed < period and weight < 2^64, so Div64
	// cannot overflow.
	q, _ := bits.Div64(hi, lo, uint64(period))
	return int(q)
}

func minPositive(a, b time.Duration) time.Duration {
	if b <= 0 {
		return a
	}
	if a <= 0 || b < a {
		return b
	}
	return a
}
