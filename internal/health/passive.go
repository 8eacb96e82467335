package health

import (
	"log/slog"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// Ejector is what passive ejection needs of a pool. *upstream.Pool
// satisfies it.
type Ejector interface {
	Name() string
	Snapshot() *upstream.Snapshot
	Eject(name string, until time.Time) error
}

var _ Ejector = (*upstream.Pool)(nil)

// PassiveOptions configure passive ejection. Zero durations take the
// defaults given below.
type PassiveOptions struct {
	// MaxFails consecutive failures eject a backend; 0 turns ejection off
	// (failures are still counted).
	MaxFails int
	// BaseEjection is the first ejection's length (default 30s). Each
	// ejection in a streak doubles it.
	BaseEjection time.Duration
	// MaxEjection caps an ejection's length (default 5m).
	MaxEjection time.Duration
	// ResetAfter ends a streak: a backend that has not been ejected for
	// this long after its last ejection ended starts again from
	// BaseEjection (default MaxEjection).
	ResetAfter time.Duration
	// Clock is the time source (default SystemClock).
	Clock Clock
	// Logger receives ejections (default slog.Default()).
	Logger *slog.Logger
}

// PassiveOptionsFrom reads p, which may be nil, with the defaults
// documented on config.Passive.
func PassiveOptionsFrom(p *config.Passive) PassiveOptions {
	o := PassiveOptions{MaxFails: 5}
	if p == nil {
		return o
	}
	if p.MaxFails != nil {
		o.MaxFails = *p.MaxFails
	}
	o.BaseEjection = p.BaseEjection.D()
	o.MaxEjection = p.MaxEjection.D()
	return o
}

// Passive ejects backends that data planes see failing (outlier detection).
// Data planes call Success or Failure after every connection or request.
// Both are lock-free and allocate nothing unless a backend is ejected,
// which is rare and publishes a new snapshot of the pool.
//
// Back-off: the n-th ejection of a streak lasts BaseEjection × 2^(n-1),
// capped at MaxEjection. A streak ends when the backend has gone
// ResetAfter past the end of its last ejection without being ejected
// again. Stats.Ejections counts every ejection and never goes down, so it
// can be exported as a counter; the streak is kept here.
//
// Failures that arrive while a backend is ejected (requests that were in
// flight when it went out) are dropped rather than extending the ejection.
type Passive struct {
	pool Ejector
	opts PassiveOptions
	log  *slog.Logger

	mu      sync.Mutex
	streaks map[*upstream.Stats]streak // keyed by Stats: one per backend lifetime
}

// streak is the back-off state of one backend.
type streak struct {
	n     int       // ejections in the streak
	until time.Time // end of the last ejection
}

// NewPassive makes passive ejection for pool.
func NewPassive(pool Ejector, o PassiveOptions) *Passive {
	if o.BaseEjection <= 0 {
		o.BaseEjection = 30 * time.Second
	}
	if o.MaxEjection <= 0 {
		o.MaxEjection = 5 * time.Minute
	}
	if o.ResetAfter <= 0 {
		o.ResetAfter = o.MaxEjection
	}
	if o.Clock == nil {
		o.Clock = SystemClock
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Passive{
		pool:    pool,
		opts:    o,
		log:     o.Logger.With("pool", pool.Name()),
		streaks: map[*upstream.Stats]streak{},
	}
}

// Success records a good connection or request to b. It writes only when
// there were failures, so that the common case leaves the counter's cache
// line shared among cores. A nil Passive does nothing.
func (p *Passive) Success(b *upstream.Backend) {
	if p == nil {
		return
	}
	if b.ConsecutiveFailures.Load() != 0 {
		b.ConsecutiveFailures.Store(0)
	}
}

// Failure records a failed connection or request to b and ejects b when
// it reaches MaxFails failures in a row. A nil Passive does nothing.
func (p *Passive) Failure(b *upstream.Backend) {
	if p == nil {
		return
	}
	n := b.ConsecutiveFailures.Add(1)
	// Only the caller that reaches the threshold exactly acts, so that
	// concurrent failures eject once.
	if p.opts.MaxFails <= 0 || n != int64(p.opts.MaxFails) {
		return
	}
	// The next ejection needs MaxFails fresh failures.
	b.ConsecutiveFailures.Store(0)
	cur := p.pool.Snapshot().Lookup(b.Name)
	if cur == nil || cur.Stats != b.Stats || cur.Ejected {
		return // gone, replaced, or already out
	}
	p.eject(b)
}

// eject takes b out for the next back-off step. It is off the hot path.
func (p *Passive) eject(b *upstream.Backend) {
	now := p.opts.Clock.Now()
	p.mu.Lock()
	s := p.streaks[b.Stats]
	if now.Before(s.until) {
		// Another caller ejected b a moment ago and the snapshot we read
		// did not show it yet.
		p.mu.Unlock()
		return
	}
	if !s.until.IsZero() && now.Sub(s.until) >= p.opts.ResetAfter {
		s.n = 0
	}
	d := backoff(p.opts.BaseEjection, p.opts.MaxEjection, s.n)
	s.n++
	s.until = now.Add(d)
	p.streaks[b.Stats] = s
	// Forget streaks that have ended, so that backends long gone from the
	// pool do not pin their Stats here.
	for k, v := range p.streaks {
		if now.Sub(v.until) >= p.opts.ResetAfter {
			delete(p.streaks, k)
		}
	}
	p.mu.Unlock()

	b.Ejections.Add(1)
	if err := p.pool.Eject(b.Name, s.until); err != nil {
		p.log.Debug("passive ejection not applied", "backend", b.Name, "err", err)
		return
	}
	p.log.Warn("backend ejected", "backend", b.Name, "addr", b.Addr,
		"failures", p.opts.MaxFails, "for", d, "streak", s.n)
}

// backoff is base × 2^n, capped at limit. It doubles step by step so that
// a long streak cannot overflow.
func backoff(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
