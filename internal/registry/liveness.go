package registry

import (
	"sync"
	"time"
)

// LivenessOptions are the heartbeat timings of ephemeral instances.
type LivenessOptions struct {
	// Interval is how often clients are told to beat (default 5s).
	Interval time.Duration
	// UnhealthyAfter without a beat marks an instance unhealthy (default 15s).
	UnhealthyAfter time.Duration
	// RemoveAfter without a beat removes it (default 30s).
	RemoveAfter time.Duration
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
}

func (o *LivenessOptions) defaults() {
	if o.Interval == 0 {
		o.Interval = 5 * time.Second
	}
	if o.UnhealthyAfter == 0 {
		o.UnhealthyAfter = 15 * time.Second
	}
	if o.RemoveAfter == 0 {
		o.RemoveAfter = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

type instRef struct {
	key Key
	id  string
}

// Liveness tracks the heartbeats of ephemeral instances. It lives on the
// leader only and is never replicated: a beat is a map write, and only the
// transitions a sweep finds (unhealthy, removed) become Raft entries. A new
// leader starts every instance's clock afresh, which gives each instance
// one full RemoveAfter to reach it after a failover.
type Liveness struct {
	opts  LivenessOptions
	mu    sync.Mutex
	beats map[instRef]time.Time
	// epoch is when this node last became leader: no instance is judged
	// silent for longer than it has led.
	epoch time.Time
}

// NewLiveness makes a tracker.
func NewLiveness(o LivenessOptions) *Liveness {
	o.defaults()
	return &Liveness{opts: o, beats: map[instRef]time.Time{}}
}

// Options returns the effective timings.
func (l *Liveness) Options() LivenessOptions { return l.opts }

// Beat records a heartbeat of instance id of k.
func (l *Liveness) Beat(k Key, id string) {
	now := l.opts.Now()
	l.mu.Lock()
	l.beats[instRef{k.withDefaults(), id}] = now
	l.mu.Unlock()
}

// Lead starts a term of leadership: every instance's silence is counted
// from now at the earliest, so instances are judged only on what this
// node has seen while leading, not on beats from an earlier term.
func (l *Liveness) Lead() {
	now := l.opts.Now()
	l.mu.Lock()
	l.epoch = now
	l.mu.Unlock()
}

// Sweep compares the store's ephemeral instances with their last beats
// and returns the command (a batch, or nil when nothing changes) that
// marks the silent ones unhealthy and removes the long-silent ones.
func (l *Liveness) Sweep(s *Store) *Command {
	now := l.opts.Now()
	type change struct{ down, gone []string }
	changes := map[Key]*change{}
	seen := map[instRef]bool{}
	l.mu.Lock()
	s.each(func(k Key, in *Instance) {
		if !in.Ephemeral {
			return
		}
		ref := instRef{k, in.ID()}
		seen[ref] = true
		last, ok := l.beats[ref]
		if !ok {
			// First sight on this node: start its clock now.
			l.beats[ref] = now
			return
		}
		if last.Before(l.epoch) {
			last = l.epoch
		}
		age := now.Sub(last)
		c := changes[k]
		switch {
		case age >= l.opts.RemoveAfter:
			if c == nil {
				c = &change{}
				changes[k] = c
			}
			c.gone = append(c.gone, ref.id)
		case age >= l.opts.UnhealthyAfter && in.Healthy:
			if c == nil {
				c = &change{}
				changes[k] = c
			}
			c.down = append(c.down, ref.id)
		}
	})
	// Beats of instances that are no longer registered are dropped, so
	// the map does not grow without bound.
	for ref := range l.beats {
		if !seen[ref] {
			delete(l.beats, ref)
		}
	}
	l.mu.Unlock()
	if len(changes) == 0 {
		return nil
	}
	b := &Command{Op: OpBatch}
	for k, c := range changes {
		if len(c.down) > 0 {
			b.Batch = append(b.Batch, Command{Op: OpSetHealth, Key: k, IDs: c.down, Healthy: false})
		}
		if len(c.gone) > 0 {
			b.Batch = append(b.Batch, Command{Op: OpDeregister, Key: k, IDs: c.gone})
		}
	}
	return b
}
