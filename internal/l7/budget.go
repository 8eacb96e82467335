package l7

import (
	"sync/atomic"
	"time"
)

// retryBudget keeps retries from multiplying load in an outage, as
// Finagle's RetryBudget and Envoy's retry_budget do: over a sliding window
// of budgetWindow seconds, retries may be at most ratio of the requests,
// plus minPerSec per second so that a quiet route can still retry.
//
// The window is a ring of one-second buckets of atomic counters. A request
// costs one atomic add (and, once a second, resetting a bucket); only a
// retry sums the ring. Races at a bucket's turn of the second can lose a
// count or two, which a budget can afford.
type retryBudget struct {
	ratio     float64
	minPerSec int
	now       func() time.Time
	buckets   [budgetWindow]budgetBucket
}

const (
	budgetWindow           = 10
	defaultBudgetRatio     = 0.2
	defaultBudgetMinPerSec = 3
)

type budgetBucket struct {
	sec      atomic.Int64 // the Unix second the counts belong to
	requests atomic.Int64
	retries  atomic.Int64
}

func newRetryBudget(ratio float64, minPerSec int, now func() time.Time) *retryBudget {
	if ratio <= 0 {
		ratio = defaultBudgetRatio
	}
	if minPerSec <= 0 {
		minPerSec = defaultBudgetMinPerSec
	}
	if now == nil {
		now = time.Now
	}
	return &retryBudget{ratio: ratio, minPerSec: minPerSec, now: now}
}

// bucket returns the bucket of second sec, emptied if it held an older one.
func (b *retryBudget) bucket(sec int64) *budgetBucket {
	k := &b.buckets[uint64(sec)%budgetWindow]
	if old := k.sec.Load(); old != sec && k.sec.CompareAndSwap(old, sec) {
		k.requests.Store(0)
		k.retries.Store(0)
	}
	return k
}

// request counts one request.
func (b *retryBudget) request() {
	b.bucket(b.now().Unix()).requests.Add(1)
}

// allow reports whether one more retry fits in the budget.
func (b *retryBudget) allow() bool {
	sec := b.now().Unix()
	var req, ret int64
	for i := range b.buckets {
		k := &b.buckets[i]
		if s := k.sec.Load(); s > sec-budgetWindow && s <= sec {
			req += k.requests.Load()
			ret += k.retries.Load()
		}
	}
	return float64(ret+1) <= b.ratio*float64(req)+float64(b.minPerSec*budgetWindow)
}

// withdraw takes one retry from the budget if it fits.
func (b *retryBudget) withdraw() bool {
	if !b.allow() {
		return false
	}
	b.bucket(b.now().Unix()).retries.Add(1)
	return true
}
