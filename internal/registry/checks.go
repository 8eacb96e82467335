package registry

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/health"
)

// CheckOptions configure the servers' checks of persistent instances.
type CheckOptions struct {
	// Check is the core checker's config (default: tcp every 5s, timeout
	// 2s, rise 2, fall 3).
	Check *config.HealthCheck
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// checker runs the core's stateless checkers against persistent
// instances from the leader, keeps rise/fall streaks locally and
// replicates only the transitions, like heartbeats.
type checker struct {
	n       *Node
	hc      config.HealthCheck
	chk     health.Checker
	now     func() time.Time
	running atomic.Bool
	last    time.Time

	mu      sync.Mutex
	streaks map[instRef]int // >0 passes in a row, <0 failures in a row
}

func newChecker(n *Node, o CheckOptions) *checker {
	hc := config.HealthCheck{Type: "tcp", Interval: config.Duration(5 * time.Second), Timeout: config.Duration(2 * time.Second), Rise: 2, Fall: 3}
	if o.Check != nil {
		hc = *o.Check
		if hc.Interval == 0 {
			hc.Interval = config.Duration(5 * time.Second)
		}
		if hc.Timeout == 0 {
			hc.Timeout = config.Duration(2 * time.Second)
		}
		if hc.Rise == 0 {
			hc.Rise = 2
		}
		if hc.Fall == 0 {
			hc.Fall = 3
		}
	}
	c := &checker{n: n, hc: hc, now: o.Now, streaks: map[instRef]int{}}
	if c.now == nil {
		c.now = time.Now
	}
	chk, err := health.New(&c.hc)
	if err != nil {
		n.log.Error("registry: persistent instance checks are off", "err", err)
	}
	c.chk = chk
	return c
}

// tick starts a round when one is due and none is running.
func (c *checker) tick() {
	if c.chk == nil || c.now().Sub(c.last) < c.hc.Interval.D() || !c.running.CompareAndSwap(false, true) {
		return
	}
	c.last = c.now()
	type target struct {
		ref     instRef
		addr    string
		healthy bool
	}
	var ts []target
	c.n.store.each(func(k Key, in *Instance) {
		if !in.Ephemeral {
			ts = append(ts, target{instRef{k, in.ID()}, in.Addr(), in.Healthy})
		}
	})
	go func() {
		defer c.running.Store(false)
		sem := make(chan struct{}, 64)
		var wg sync.WaitGroup
		var mu sync.Mutex
		changes := map[Key]map[bool][]string{}
		for _, t := range ts {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				ctx, cancel := context.WithTimeout(context.Background(), c.hc.Timeout.D())
				err := c.chk.Check(ctx, t.addr)
				cancel()
				c.mu.Lock()
				s := c.streaks[t.ref]
				if err == nil {
					s = max(s, 0) + 1
				} else {
					s = min(s, 0) - 1
				}
				c.streaks[t.ref] = s
				c.mu.Unlock()
				flip := (t.healthy && s <= -c.hc.Fall) || (!t.healthy && s >= c.hc.Rise)
				if flip {
					mu.Lock()
					if changes[t.ref.key] == nil {
						changes[t.ref.key] = map[bool][]string{}
					}
					changes[t.ref.key][!t.healthy] = append(changes[t.ref.key][!t.healthy], t.ref.id)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(changes) == 0 {
			return
		}
		b := &Command{Op: OpBatch}
		for k, m := range changes {
			for h, ids := range m {
				b.Batch = append(b.Batch, Command{Op: OpSetHealth, Key: k, IDs: ids, Healthy: h})
			}
		}
		if _, err := c.n.Propose(b); err != nil {
			c.n.log.Warn("registry: replicating check results", "err", err)
		}
	}()
}
