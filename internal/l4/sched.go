package l4

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/upstream"
)

// flow is what a scheduler may look at: who connects, to which address.
type flow struct {
	client netip.AddrPort
	vip    netip.AddrPort
}

// scheduler chooses a backend for a new connection or session from a pool
// snapshot. It returns nil when no backend may take it. ok(b) reports
// whether a backend is below the service's connection thresholds;
// schedulers must not return one that is not.
type scheduler interface {
	pick(snap *upstream.Snapshot, f flow, ok func(*upstream.Backend) bool) *upstream.Backend
}

// schedOptions are the per-service options schedulers read.
type schedOptions struct {
	mhFallback bool
	mhPort     bool
}

// newScheduler builds the named scheduler; "" means the pool's own
// picker. The core's algorithms come from package balance; the LVS ones
// the core lacks are built here.
func newScheduler(name string, o schedOptions) (scheduler, error) {
	switch name {
	case "":
		return poolScheduler{}, nil
	case "lblc":
		return newLBLC(), nil
	case "lblcr":
		return newLBLCR(), nil
	case "fo":
		return failover{}, nil
	case "ovf":
		return overflow{}, nil
	case "twos":
		name = "p2c"
	}
	b, err := balance.Builder(name, balance.Options{})
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	c := &coreScheduler{build: b, key: clientKey, fallback: true}
	switch name {
	case "dh":
		c.key = destKey
	case "sh", "mh", "maglev":
		// LVS's sh and mh drop a connection whose hashed backend is over
		// its threshold unless told to fall back; so do these.
		c.fallback = o.mhFallback
		if o.mhPort {
			c.key = clientPortKey
		}
	}
	return c, nil
}

func addrKey(a netip.Addr, port uint16, withPort bool) uint64 {
	b := a.Unmap().As16()
	var buf [18]byte
	copy(buf[:], b[:])
	if withPort {
		buf[16], buf[17] = byte(port>>8), byte(port)
	}
	return xxhash.Sum64(buf[:])
}

func clientKey(f flow) uint64     { return addrKey(f.client.Addr(), 0, false) }
func clientPortKey(f flow) uint64 { return addrKey(f.client.Addr(), f.client.Port(), true) }
func destKey(f flow) uint64       { return addrKey(f.vip.Addr(), 0, false) }

// poolScheduler uses the picker the pool built with its own lb.
type poolScheduler struct{}

func (poolScheduler) pick(snap *upstream.Snapshot, f flow, ok func(*upstream.Backend) bool) *upstream.Backend {
	if b := snap.Pick(clientKey(f)); b != nil && ok(b) {
		return b
	}
	return leastLoaded(snap.Ready, ok)
}

// coreScheduler builds one of package balance's pickers per pool snapshot
// and keeps it until the snapshot changes. The pick path is one atomic
// load and a pointer comparison; only the first connection after a change
// of the pool builds a table.
type coreScheduler struct {
	build    upstream.PickerBuilder
	key      func(flow) uint64
	fallback bool
	cur      atomic.Pointer[builtPicker]
}

type builtPicker struct {
	snap   *upstream.Snapshot
	picker upstream.Picker
}

func (c *coreScheduler) picker(snap *upstream.Snapshot) upstream.Picker {
	if b := c.cur.Load(); b != nil && b.snap == snap {
		return b.picker
	}
	if len(snap.Ready) == 0 {
		return nil
	}
	p := c.build(snap.Ready)
	c.cur.Store(&builtPicker{snap: snap, picker: p})
	return p
}

func (c *coreScheduler) pick(snap *upstream.Snapshot, f flow, ok func(*upstream.Backend) bool) *upstream.Backend {
	p := c.picker(snap)
	if p == nil {
		return nil
	}
	key := c.key(f)
	if b := p.Pick(key); b != nil && ok(b) {
		return b
	}
	if !c.fallback {
		return nil
	}
	// mh-fallback: rehash the key, as LVS walks to the next table entry,
	// so a client's second choice is stable too.
	for i := range len(snap.Ready) {
		// The pickers mix their key, so a fixed step gives each try an
		// unrelated slot.
		if b := p.Pick(key + uint64(i+1)*0x9e3779b97f4a7c15); b != nil && ok(b) {
			return b
		}
	}
	return leastLoaded(snap.Ready, ok)
}

// leastLoaded is wlc over the backends that ok allows: the least
// Active/weight, compared by cross-multiplication. Schedulers fall back to
// it when their own choice is over its threshold.
func leastLoaded(ready []*upstream.Backend, ok func(*upstream.Backend) bool) *upstream.Backend {
	var best *upstream.Backend
	var ba, bw int64
	for _, b := range ready {
		if !ok(b) {
			continue
		}
		a, w := b.Active.Load(), int64(b.EffectiveWeight)
		if best == nil || a*bw < ba*w {
			best, ba, bw = b, a, w
		}
	}
	return best
}
