package netpark

import "time"

// Sweep enforces idle timeouts with one pass over a table of connections
// every so often instead of a runtime timer per connection (a hundred-odd
// bytes each, and a start and a stop per connection). Until stop closes,
// it calls collect every every() — clamped to between 10 ms and a second,
// read again after each pass, so that a reload's new timeouts apply —
// with the time of the pass (Unix nanoseconds) and an empty slice to
// append the expired connections to; then it calls expire on each of
// them, outside whatever lock collect took to walk its table. A
// connection closes at most one period after its timeout.
func Sweep[T any](stop <-chan struct{}, every func() time.Duration, collect func(now int64, expired []T) []T, expire func(T)) {
	period := func() time.Duration { return min(max(every(), 10*time.Millisecond), time.Second) }
	t := time.NewTimer(period())
	defer t.Stop()
	var expired []T
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		expired = collect(time.Now().UnixNano(), expired[:0])
		for _, c := range expired {
			expire(c)
		}
		clear(expired)
		t.Reset(period())
	}
}
