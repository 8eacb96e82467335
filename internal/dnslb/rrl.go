package dnslb

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/strata-lb/strata/internal/config"
)

// rrl is response rate limiting per client subnet (as BIND's and Knot's
// RRL): a token bucket per subnet in a fixed-size table, so a flood from
// many subnets costs bounded memory. A limited response is dropped, or
// every slip-th one is answered truncated so a real client behind a
// spoofed flood can retry over TCP.
type rrl struct {
	rate, burst int64 // tokens per second, bucket size
	slip        uint32
	v4, v6      int
	// dropped and slipped count limited responses for metrics; they
	// belong to the server, so they outlive this table.
	dropped, slipped *atomic.Uint64
	shards           [rrlShards]rrlShard
}

const (
	rrlShards  = 64
	rrlBuckets = 1024 // per shard
	// tokens are counted in millis so that sub-token refills add up.
	rrlScale = 1000
)

type rrlShard struct {
	mu      sync.Mutex
	buckets [rrlBuckets]rrlBucket
	_       [64]byte
}

type rrlBucket struct {
	key    netip.Prefix
	tokens int64 // in 1/rrlScale of a token
	last   int64 // nanoseconds
	slips  uint32
}

// rrlVerdict is what to do with a response.
type rrlVerdict uint8

const (
	rrlPass rrlVerdict = iota
	rrlDrop
	rrlSlip
)

func newRRL(c *config.RRL, dropped, slipped *atomic.Uint64) *rrl {
	slip := 0
	if c.Slip != nil {
		slip = *c.Slip
	}
	if dropped == nil {
		dropped, slipped = new(atomic.Uint64), new(atomic.Uint64)
	}
	return &rrl{rate: int64(c.ResponsesPerSecond), burst: int64(max(c.Burst, 1)), slip: uint32(slip),
		v4: c.IPv4Prefix, v6: c.IPv6Prefix, dropped: dropped, slipped: slipped}
}

// check charges one response to addr's subnet at time now (nanoseconds).
func (l *rrl) check(addr netip.Addr, now int64) rrlVerdict {
	addr = addr.Unmap()
	bits := l.v6
	if addr.Is4() {
		bits = l.v4
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return rrlPass
	}
	raw := p.Addr().As16()
	h := xxhash.Sum64(raw[:])
	s := &l.shards[h%rrlShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.buckets[(h/rrlShards)%rrlBuckets]
	if b.key != p {
		// A new subnet takes the slot; a collision only forgets an old
		// subnet's debt, it never limits a new one.
		*b = rrlBucket{key: p, tokens: l.burst * rrlScale, last: now}
	}
	if el := now - b.last; el > 0 {
		b.tokens = min(l.burst*rrlScale, b.tokens+el*l.rate*rrlScale/1e9)
		b.last = now
	}
	if b.tokens >= rrlScale {
		b.tokens -= rrlScale
		return rrlPass
	}
	b.slips++
	if l.slip > 0 && b.slips%l.slip == 0 {
		l.slipped.Add(1)
		return rrlSlip
	}
	l.dropped.Add(1)
	return rrlDrop
}
