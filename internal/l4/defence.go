package l4

import (
	"net/netip"
	"sync"
	"time"
)

// ipLimiter bounds the rate of new connections from each client address
// with a token bucket per address: rate tokens a second, at most burst
// saved up. It is LVS's missing accept-rate defence, kept in user space.
type ipLimiter struct {
	rate, burst float64
	now         func() time.Time
	mu          sync.Mutex
	m           map[netip.Addr]*bucket
	lastSweep   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxLimiterEntries bounds the limiter's memory under a flood from many
// addresses: past it, full buckets (addresses quiet long enough to have
// refilled) are swept, and if that frees nothing new addresses are
// refused until it does — a flood that large is what the limit is for.
const maxLimiterEntries = 1 << 18

func newIPLimiter(rate, burst float64, now func() time.Time) *ipLimiter {
	return &ipLimiter{rate: rate, burst: burst, now: now, m: map[netip.Addr]*bucket{}}
}

// allow takes a token for addr and reports whether there was one.
func (l *ipLimiter) allow(addr netip.Addr) bool {
	addr = addr.Unmap()
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[addr]
	if b == nil {
		if len(l.m) >= maxLimiterEntries || now.Sub(l.lastSweep) > time.Minute {
			l.sweepLocked(now)
			if len(l.m) >= maxLimiterEntries {
				return false
			}
		}
		b = &bucket{tokens: l.burst, at: now}
		l.m[addr] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweepLocked forgets addresses whose bucket has refilled: they would
// start full anyway.
func (l *ipLimiter) sweepLocked(now time.Time) {
	for a, b := range l.m {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.m, a)
		}
	}
	l.lastSweep = now
}
