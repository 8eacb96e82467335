package upstream

import (
	"fmt"
	"sync/atomic"

	"github.com/strata-lb/strata/internal/config/known"
)

// State is the administrative state of a backend: what an operator or a
// provider says about it, as opposed to what health checks find.
type State uint8

const (
	// StateUp takes new traffic when healthy.
	StateUp State = iota
	// StateDown takes no traffic at all.
	StateDown
	// StateDraining takes no new traffic; work in flight finishes.
	StateDraining
	// StateMaintenance is down on purpose: no traffic, no alarms.
	StateMaintenance
)

var stateNames = [...]string{"up", "down", "draining", "maintenance"}

// The config checks a backend's state with ParseState without importing
// upstream (see internal/config/known).
func init() {
	known.SetBackendStates(func(s string) error {
		_, err := ParseState(s)
		return err
	})
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// ParseState turns a config word into a State.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("unknown backend state %q (want up, down, draining or maintenance)", s)
}

// MarshalText lets a State appear as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Spec is what a provider (static config, the registry) says a backend is.
type Spec struct {
	// Name identifies the backend within its pool; it defaults to Addr.
	Name string
	// Addr is host:port.
	Addr   string
	Weight int
	Zone   string
	Tags   map[string]string
	State  State
}

// Stats are the live counters of one backend. One Stats lives as long as
// the backend stays in its pool and is shared by every snapshot, so data
// planes update it with atomics and never take a lock.
type Stats struct {
	// Active counts connections (l4) or requests (l7) in flight now;
	// least-connection pickers read it.
	Active atomic.Int64
	// Requests counts every connection or request sent to the backend.
	Requests atomic.Uint64
	// Failures counts every failed connection or request.
	Failures atomic.Uint64
	// ConsecutiveFailures is reset by a success; passive ejection reads it.
	ConsecutiveFailures atomic.Int64
	// Ejections counts passive ejections; the back-off grows with it.
	Ejections atomic.Int64
}

// Backend is one backend as a snapshot sees it. Every field but Stats is
// immutable once published.
type Backend struct {
	Spec
	// Pool is the name of the pool the backend belongs to.
	Pool string
	// Healthy is what active checks last concluded (true until told otherwise).
	Healthy bool
	// Ejected is true while passive ejection keeps the backend out.
	Ejected bool
	// EffectiveWeight is the weight pickers use: Weight, ramped during
	// slow start, and 0 whenever the backend must take no new traffic.
	EffectiveWeight int
	// Stats is shared with every other snapshot of this backend.
	*Stats
}

// Available reports whether the backend may take new traffic.
func (b *Backend) Available() bool { return b.EffectiveWeight > 0 }

// Status summarises the backend in one word for operators.
func (b *Backend) Status() string {
	switch {
	case b.State != StateUp:
		return b.State.String()
	case !b.Healthy:
		return "unhealthy"
	case b.Ejected:
		return "ejected"
	case b.Weight == 0:
		return "weight-0"
	case b.EffectiveWeight < b.Weight:
		return "slow-start"
	}
	return "up"
}
