package registry

import (
	"context"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/health"
	"github.com/strata-lb/strata/internal/upstream"
)

// CheckOptions configure the servers' checks of persistent instances.
type CheckOptions struct {
	// Check is the core checker's config: its type defaults to tcp, its
	// timing and thresholds to health.Monitor's (every 5s, timeout 2s,
	// rise 2, fall 3).
	Check *config.HealthCheck
}

// checker checks persistent instances from the leader with the core's
// health.Monitor, which keeps the rise/fall streaks, over a pool that
// mirrors the store's persistent instances; a transition the monitor
// concludes is replicated, like heartbeats, instead of set locally.
type checker struct {
	n    *Node
	chk  health.Checker
	opts health.MonitorOptions
	pool *persistentPool

	mu     sync.Mutex
	cancel context.CancelFunc // the running monitor, while leading
	done   chan struct{}
	synced time.Time // when the pool was last brought up to the store
}

func newChecker(n *Node, o CheckOptions) *checker {
	hc := config.HealthCheck{Type: "tcp"}
	if o.Check != nil {
		hc = *o.Check
	}
	c := &checker{n: n, opts: health.MonitorOptionsFrom(&hc)}
	c.opts.Logger = n.log.With("checks", "persistent instances")
	chk, err := health.New(&hc)
	if err != nil {
		n.log.Error("registry: persistent instance checks are off", "err", err)
	}
	c.chk = chk
	return c
}

// tick, called by the leader, brings the checked pool up to the store and
// starts the monitor if it does not run.
func (c *checker) tick() {
	if c.chk == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pool == nil {
		c.pool = newPersistentPool(c.n)
		c.synced = time.Time{}
	}
	// The walk over the store is done once per check interval, as a round
	// of checks was before the monitor: a new persistent instance is
	// checked within an interval, and a store of 100k ephemeral instances
	// is not walked on every sweep for the few persistent ones.
	if now := time.Now(); now.Sub(c.synced) >= c.opts.Interval {
		c.synced = now
		c.pool.sync(c.n.store)
	}
	if c.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(c.n.ctx)
	mon := health.NewMonitor(c.pool, c.chk, c.opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		mon.Run(ctx)
	}()
	c.cancel, c.done = cancel, done
}

// stop ends the monitor when this node stops leading or closes; the next
// leader starts its own from its store.
func (c *checker) stop() {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.cancel, c.done, c.pool = nil, nil, nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// persistentPool is the store's persistent instances as a health.Pool:
// one backend per instance, named by service and instance ID, healthy as
// the store says. The monitor's conclusions go to Raft (SetHealthy).
type persistentPool struct {
	*upstream.Pool
	n *Node

	mu   sync.Mutex
	refs map[string]instRef
	fns  []func(*upstream.Snapshot)
}

var _ health.Pool = (*persistentPool)(nil)

func newPersistentPool(n *Node) *persistentPool {
	return &persistentPool{Pool: upstream.NewPool("persistent instances", upstream.Options{}), n: n, refs: map[string]instRef{}}
}

// Subscribe keeps the monitor's callback and calls it after sync has set
// every new backend's health, so the monitor never starts a backend from
// the pool's default (healthy) rather than from the store.
func (p *persistentPool) Subscribe(fn func(*upstream.Snapshot)) {
	p.mu.Lock()
	p.fns = append(p.fns, fn)
	p.mu.Unlock()
}

// sync makes the pool the store's persistent instances.
func (p *persistentPool) sync(s *Store) {
	var specs []upstream.Spec
	healthy := map[string]bool{}
	refs := map[string]instRef{}
	s.each(func(k Key, in *Instance) {
		if in.Ephemeral {
			return
		}
		ref := instRef{k, in.ID()}
		name := k.String() + "|" + ref.id
		specs = append(specs, upstream.Spec{Name: name, Addr: in.Addr(), Weight: 1})
		healthy[name], refs[name] = in.Healthy, ref
	})
	before := p.Snapshot()
	changed := len(before.All) != len(specs)
	for _, sp := range specs {
		if b := before.Lookup(sp.Name); b == nil || b.Addr != sp.Addr {
			changed = true
			break
		}
	}
	if !changed {
		return
	}
	if err := p.Update(specs); err != nil {
		p.n.log.Error("registry: persistent instances refused by the checked pool", "err", err)
		return
	}
	for name, h := range healthy {
		if before.Lookup(name) == nil && !h {
			p.Pool.SetHealthy(name, false)
		}
	}
	p.mu.Lock()
	p.refs = refs
	fns := p.fns
	p.mu.Unlock()
	snap := p.Snapshot()
	for _, fn := range fns {
		fn(snap)
	}
}

// SetHealthy replicates the monitor's conclusion about an instance.
func (p *persistentPool) SetHealthy(name string, healthy bool) error {
	p.mu.Lock()
	ref, ok := p.refs[name]
	p.mu.Unlock()
	if !ok {
		return nil // removed since; its check loop is being stopped
	}
	if _, err := p.n.Propose(&Command{Op: OpSetHealth, Key: ref.key, IDs: []string{ref.id}, Healthy: healthy}); err != nil {
		p.n.log.Warn("registry: replicating check results", "err", err)
		return err
	}
	return p.Pool.SetHealthy(name, healthy)
}
