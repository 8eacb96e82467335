package netpark

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestSweep: a pass expires what collect reports, again on later passes,
// and the sweep ends when stop closes.
func TestSweep(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond).UnixNano()
	var expired atomic.Int32
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		Sweep(stop, func() time.Duration { return 0 }, func(now int64, out []int) []int {
			if now >= deadline {
				out = append(out, 1, 2)
			}
			return out
		}, func(int) { expired.Add(1) })
	}()
	end := time.Now().Add(5 * time.Second)
	for expired.Load() < 4 {
		if time.Now().After(end) {
			t.Fatalf("%d expired after 5s, want at least 4 (two passes)", expired.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Sweep did not return after stop")
	}
}
