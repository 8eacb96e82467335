package registry

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/config"
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

// defaults fills what is zero with the config's defaults, written once
// in internal/config.
func (o *LivenessOptions) defaults() {
	if o.Interval == 0 {
		o.Interval = config.DefaultRegistryHeartbeatInterval
	}
	if o.UnhealthyAfter == 0 {
		o.UnhealthyAfter = config.DefaultRegistryUnhealthyAfter
	}
	if o.RemoveAfter == 0 {
		o.RemoveAfter = config.DefaultRegistryRemoveAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// instRef names one instance of one service.
type instRef struct {
	key Key
	id  string
}

// Liveness tracks the heartbeats of ephemeral instances. It lives on the
// leader only and is never replicated: a beat is a map write, and only the
// transitions a sweep finds (unhealthy, removed) become Raft entries. A new
// leader counts silence from when it took over (Lead), which gives each
// instance one full RemoveAfter to reach it after a failover.
//
// Beats are kept per service, by instance ID, as Unix nanoseconds: a sweep
// over 100k instances then walks the store's own maps without allocating
// and without hashing a composite key per instance.
type Liveness struct {
	opts  LivenessOptions
	mu    sync.Mutex
	beats map[Key]map[string]int64
	// epoch is when this node last became leader (Unix nanoseconds): no
	// instance is judged silent for longer than it has led.
	epoch int64
	// beatAnswer is the HTTP answer to a heartbeat, the same for every
	// instance, encoded once.
	beatAnswer []byte
}

// NewLiveness makes a tracker.
func NewLiveness(o LivenessOptions) *Liveness {
	o.defaults()
	ans, _ := json.Marshal(map[string]any{"heartbeat_interval_ms": o.Interval.Milliseconds()})
	return &Liveness{opts: o, beats: map[Key]map[string]int64{}, beatAnswer: append(ans, '\n')}
}

// Options returns the effective timings.
func (l *Liveness) Options() LivenessOptions { return l.opts }

// Beat records a heartbeat of instance id of k.
func (l *Liveness) Beat(k Key, id string) {
	now := l.opts.Now().UnixNano()
	k = k.withDefaults()
	l.mu.Lock()
	bm := l.beats[k]
	if bm == nil {
		bm = map[string]int64{}
		l.beats[k] = bm
	}
	bm[id] = now
	l.mu.Unlock()
}

// Lead starts a term of leadership: every instance's silence is counted
// from now at the earliest, so instances are judged only on what this
// node has seen while leading, not on beats from an earlier term.
func (l *Liveness) Lead() {
	now := l.opts.Now().UnixNano()
	l.mu.Lock()
	l.epoch = now
	l.mu.Unlock()
}

// beatCount is the number of instances with a recorded beat (tests).
func (l *Liveness) beatCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, bm := range l.beats {
		n += len(bm)
	}
	return n
}

// Sweep compares the store's ephemeral instances with their last beats
// and returns the command (a batch, or nil when nothing changes) that
// marks the silent ones unhealthy and removes the long-silent ones.
func (l *Liveness) Sweep(s *Store) *Command {
	now := l.opts.Now().UnixNano()
	unhealthy, remove := int64(l.opts.UnhealthyAfter), int64(l.opts.RemoveAfter)
	var b *Command
	l.mu.Lock()
	defer l.mu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, e := range s.services {
		bm := l.beats[k]
		var down, gone []string
		for id, in := range e.inst {
			if !in.Ephemeral {
				continue
			}
			last, ok := bm[id]
			if !ok {
				// First sight on this node: start its clock now.
				if bm == nil {
					bm = map[string]int64{}
					l.beats[k] = bm
				}
				bm[id] = now
				continue
			}
			last = max(last, l.epoch)
			switch age := now - last; {
			case age >= remove:
				gone = append(gone, id)
			case age >= unhealthy && in.Healthy:
				down = append(down, id)
			}
		}
		// Beats of instances no longer registered are dropped, so the
		// maps do not grow without bound.
		if len(bm) > len(e.inst) {
			for id := range bm {
				if _, ok := e.inst[id]; !ok {
					delete(bm, id)
				}
			}
		}
		if len(down)+len(gone) == 0 {
			continue
		}
		if b == nil {
			b = &Command{Op: OpBatch}
		}
		if len(down) > 0 {
			b.Batch = append(b.Batch, Command{Op: OpSetHealth, Key: k, IDs: down, Healthy: false})
		}
		if len(gone) > 0 {
			b.Batch = append(b.Batch, Command{Op: OpDeregister, Key: k, IDs: gone})
		}
	}
	for k := range l.beats {
		if _, ok := s.services[k]; !ok {
			delete(l.beats, k)
		}
	}
	return b
}
