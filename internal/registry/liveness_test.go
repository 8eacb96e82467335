package registry

import (
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestHeartbeatExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewLiveness(LivenessOptions{Now: clk.now})
	s := NewStore()
	a, b := inst("127.0.0.1", 80, "", true), inst("127.0.0.2", 80, "", true)
	p := inst("127.0.0.3", 80, "", true)
	p.Ephemeral = false
	mustApply(t, s, Command{Op: OpRegister, Key: svcKey, Instances: []Instance{a, b, p}})
	sweep := func() {
		if c := l.Sweep(s); c != nil {
			mustApply(t, s, *c)
		}
	}
	health := func() map[string]bool {
		v, _ := s.Get(svcKey)
		m := map[string]bool{}
		for _, in := range v.Instances {
			m[in.IP] = in.Healthy
		}
		return m
	}
	sweep() // first sight starts the clocks
	for i := 0; i < 4; i++ {
		clk.add(5 * time.Second)
		l.Beat(svcKey, a.ID())
		sweep()
	}
	// b has been silent 20s: unhealthy, still listed; a beats; p is
	// persistent and never judged by heartbeats.
	if h := health(); !h["127.0.0.1"] || h["127.0.0.2"] || !h["127.0.0.3"] || len(h) != 3 {
		t.Fatalf("after 20s: %v", h)
	}
	clk.add(10 * time.Second)
	l.Beat(svcKey, a.ID())
	sweep()
	if h := health(); len(h) != 2 || !h["127.0.0.1"] {
		t.Fatalf("after 30s: %v (want b removed)", h)
	}
	// An unhealthy instance that beats again is not made healthy by the
	// sweep; the beat handler does that (see the server).
	if n := l.beatCount(); n != 2 {
		t.Fatalf("beats of removed instances kept: %d", n)
	}
}
