package health

import (
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// fakeClock is a Clock that moves only when a test calls Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{}
}

type fakeTimer struct {
	clk *fakeClock
	ch  chan time.Time
	at  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		timers: map[*fakeTimer]struct{}{},
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, ch: make(chan time.Time, 1), at: c.now.Add(d)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers[t] = struct{}{}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	_, ok := t.clk.timers[t]
	delete(t.clk.timers, t)
	return ok
}

// Advance moves time on by d and fires every timer that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			delete(c.timers, t)
		}
	}
}

// Pending counts the timers waiting to fire.
func (c *fakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// waitFor polls cond until it holds or a deadline passes. It stands in for
// nothing: the condition is what the test waits for, the deadline only
// turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// closedAddr returns a loopback address on which nothing listens, for the
// rest of the test. A closed listener's port would be free again, and
// another test on the machine could be handed it and answer, so for TCP a
// socket holds the port without listening (testnet.RefusedAddr); for UDP,
// where a bound socket would receive, the port is one below the ephemeral
// range, which no socket bound to port 0 is handed.
func closedAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "tcp" {
		return testnet.RefusedAddr(t)
	}
	return testnet.FreeUDPTCPAddr(t)
}
