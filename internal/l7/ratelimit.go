package l7

import (
	"container/list"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/strata-lb/strata/internal/config"
)

// rateLimiter is a token bucket per key (the client address or a header),
// kept in a bounded LRU so that a flood of distinct keys costs at most
// maxKeys buckets: the least recently seen key is forgotten first, and a
// forgotten key starts again with a full bucket. The LRU is split into
// shards by key hash so that concurrent requests rarely share a lock.
type rateLimiter struct {
	limit  rate.Limit
	burst  int
	kind   hashKind
	header string
	now    func() time.Time
	shards [rateShards]rateShard
}

const (
	rateShards         = 16
	defaultRateMaxKeys = 10000
)

type rateShard struct {
	mu    sync.Mutex
	max   int
	keys  map[string]*list.Element
	order list.List // front: most recently seen
}

type rateEntry struct {
	key string
	lim *rate.Limiter
}

func newRateLimiter(c *config.RouteRateLimit, now func() time.Time) (*rateLimiter, error) {
	if c.Rate <= 0 || c.Per < 0 {
		return nil, fmt.Errorf("rate must be positive, got %d per %s", c.Rate, c.Per)
	}
	per := time.Duration(c.Per)
	if per == 0 {
		per = time.Second
	}
	kind, name, err := parseHashKey(c.Key, false)
	if err != nil {
		return nil, err
	}
	l := &rateLimiter{limit: rate.Limit(float64(c.Rate) / per.Seconds()), burst: c.Burst, kind: kind, header: name, now: now}
	if l.burst <= 0 {
		l.burst = c.Rate
	}
	maxKeys := c.MaxKeys
	if maxKeys <= 0 {
		maxKeys = defaultRateMaxKeys
	}
	perShard := max(1, (maxKeys+rateShards-1)/rateShards)
	for i := range l.shards {
		l.shards[i].max = perShard
		l.shards[i].keys = make(map[string]*list.Element)
	}
	return l, nil
}

// allow takes a token for r's key. When none is left it returns how long
// until one is.
func (l *rateLimiter) allow(r *http.Request, ip string) (bool, time.Duration) {
	key := keyString(l.kind, l.header, r, ip)
	sh := &l.shards[fnv32(key)%rateShards]
	now := l.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var lim *rate.Limiter
	if e, ok := sh.keys[key]; ok {
		sh.order.MoveToFront(e)
		lim = e.Value.(*rateEntry).lim
	} else {
		if sh.order.Len() >= sh.max {
			old := sh.order.Back()
			sh.order.Remove(old)
			delete(sh.keys, old.Value.(*rateEntry).key)
		}
		// The key is copied so that the map does not keep a whole header
		// block or request alive.
		key = strings.Clone(key)
		lim = rate.NewLimiter(l.limit, l.burst)
		sh.keys[key] = sh.order.PushFront(&rateEntry{key: key, lim: lim})
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	res := lim.ReserveN(now, 1)
	d := res.DelayFrom(now)
	res.CancelAt(now)
	return false, d
}

// size returns how many keys are remembered; tests read it.
func (l *rateLimiter) size() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].keys)
		l.shards[i].mu.Unlock()
	}
	return n
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// tooManyRequests answers 429 with Retry-After in whole seconds, rounded
// up so that a client that waits that long finds a token.
func tooManyRequests(w http.ResponseWriter, wait time.Duration) {
	secs := int64(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	http.Error(w, "too many requests", http.StatusTooManyRequests)
}
