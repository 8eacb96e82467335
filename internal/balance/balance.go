// Package balance holds strata's load-balancing algorithms. Each lives in
// its own file, registers itself by name, and builds an upstream.Picker over
// the backends of one pool snapshot: tables are built once per snapshot and
// a pick takes no lock and allocates nothing.
package balance

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/strata-lb/strata/internal/config/known"
	"github.com/strata-lb/strata/internal/upstream"
)

// Options tune the algorithms that need tuning.
type Options struct {
	// Rand returns uniformly random 64-bit numbers; random, weighted random
	// and p2c use it. Pickers call it from many goroutines at once, so it
	// must be safe for concurrent use unless the caller picks from one.
	// Tests inject a seeded source; nil means math/rand/v2.
	Rand func() uint64
	// TableSize is Maglev's lookup table size, a prime; 65537 when 0. A
	// size that is not prime is rounded up to the next prime. Larger
	// tables move fewer keys between remaining backends when one leaves.
	TableSize int
}

// DefaultTableSize is Maglev's table size when Options.TableSize is 0.
const DefaultTableSize = 65537

// Factory builds a picker over ready, which is never empty and holds only
// backends with EffectiveWeight > 0.
type Factory func(ready []*upstream.Backend, opts Options) upstream.Picker

var factories = map[string]Factory{}

// The config checks an algorithm's name against this registry without
// importing balance (see internal/config/known).
func init() {
	known.SetAlgorithms(func(name string) error {
		_, err := Builder(name, Options{})
		return err
	}, Names)
}

// Register makes an algorithm available by name. It is called from init.
func Register(name string, f Factory) {
	if _, dup := factories[name]; dup {
		panic("balance: algorithm registered twice: " + name)
	}
	factories[name] = f
}

// Names lists the registered algorithms, sorted.
func Names() []string {
	n := make([]string, 0, len(factories))
	for k := range factories {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Builder returns the upstream.PickerBuilder for the named algorithm.
func Builder(name string, opts Options) (upstream.PickerBuilder, error) {
	f, ok := factories[name]
	if !ok {
		return nil, fmt.Errorf("unknown load-balancing algorithm %q (have %s)", name, strings.Join(Names(), ", "))
	}
	if opts.Rand == nil {
		opts.Rand = rand.Uint64
	}
	if opts.TableSize == 0 {
		opts.TableSize = DefaultTableSize
	}
	return func(ready []*upstream.Backend) upstream.Picker { return f(ready, opts) }, nil
}
