// Command regbench measures a service registry the same way for strata,
// etcd and ZooKeeper, each through its own client library and the way
// service frameworks use it, so the three can be compared in one run:
//
//	regbench -target strata|etcd|zk -addr HOST:PORT -mode reg     registrations/s
//	regbench ... -mode beat    heartbeats/s
//	regbench ... -mode query   queries/s of one service's 10 instances
//	regbench ... -mode watch   p50/p99 of one change reaching -subs subscribers
//	regbench ... -mode fill    registers -n instances (for the memory figure)
//
// What one operation is, per system:
//
//	          strata                       etcd                                ZooKeeper
//	reg       PUT /v1/registry/instances   LeaseGrant + Put(key, WithLease)    create ephemeral znode
//	beat      PUT /v1/registry/beat (raw)  LeaseKeepAlive (one stream message) session ping (opcode 11, raw)
//	query     GET …/services/…/<svc>       Get(prefix, WithPrefix, serializable) getChildren
//	watch     GET /v1/registry/watch/… stream  Watch(prefix)                   getChildren + watch, re-armed
//
// "raw": regbench writes and reads the heartbeat's bytes itself on a
// connection of its own, for strata as for ZooKeeper, so that its own cost
// per heartbeat is as small for both.
//
// Every loop is bounded by -d or -n. It prints one line of key=value.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var (
	target = flag.String("target", "strata", "strata, etcd or zk")
	addr   = flag.String("addr", "127.0.0.1:8848", "address of the registry (strata: HTTP; etcd: client URL host:port; zk: client port)")
	mode   = flag.String("mode", "reg", "reg, beat, query, watch or fill")
	conc   = flag.Int("c", 32, "concurrent clients")
	dur    = flag.Duration("d", 5*time.Second, "duration of reg, beat and query")
	n      = flag.Int("n", 100000, "instances for fill")
	subs   = flag.Int("subs", 1000, "subscribers for watch, each on a connection (session) of its own")
	change = flag.Int("changes", 50, "changes for watch")
	prefix = flag.String("prefix", "b", "service name prefix, so runs do not collide")
)

// system is one registry as its clients use it. A worker is one client
// (an HTTP connection, an etcd client, a ZooKeeper session).
type system interface {
	// worker opens client w of the load generator.
	worker(w int) (client, error)
	// prepare creates what services need before they take instances
	// (ZooKeeper's parent znodes), untimed.
	prepare(svcs []string) error
}

type client interface {
	// register adds a new ephemeral instance i of svc.
	register(svc string, i int) error
	// beatSetup registers what beat then keeps alive.
	beatSetup(svc string, i int) error
	// beat sends one heartbeat.
	beat() error
	// query returns the number of instances of svc.
	query(svc string) (int, error)
	// subscribe calls fn on every change of svc after the call returns;
	// armed is called each time the subscription is in place again.
	subscribe(svc string, fn func(), armed func()) error
	close()
}

func ip(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

func newSystem() system {
	switch *target {
	case "strata":
		return &strataSys{}
	case "etcd":
		return &etcdSys{}
	case "zk":
		return &zkSys{}
	}
	fail(fmt.Errorf("unknown target %q", *target))
	return nil
}

func openWorkers(s system, k int) []client {
	cs := make([]client, k)
	for w := range cs {
		c, err := s.worker(w)
		if err != nil {
			fail(fmt.Errorf("opening client %d: %w", w, err))
		}
		cs[w] = c
	}
	return cs
}

// loop runs fn on one goroutine per client for *dur and returns
// operations, errors and the elapsed time.
func loop(cs []client, fn func(c client, i int) error) (ops, errs int64, el time.Duration, firstErr error) {
	var o, e atomic.Int64
	var next atomic.Int64
	var errOnce sync.Once
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := fn(c, int(next.Add(1))); err != nil {
					e.Add(1)
					errOnce.Do(func() { firstErr = err })
				} else {
					o.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return o.Load(), e.Load(), time.Since(start), firstErr
}

func report(m string, ops, errs int64, el time.Duration, err error) {
	fmt.Printf("target=%s mode=%s c=%d ops=%d errors=%d per_sec=%.0f\n", *target, m, *conc, ops, errs, float64(ops)/el.Seconds())
	if err != nil {
		fmt.Fprintln(os.Stderr, "regbench: first error:", err)
	}
}

func main() {
	flag.Parse()
	s := newSystem()
	switch *mode {
	case "reg":
		svcs := make([]string, 100)
		for i := range svcs {
			svcs[i] = *prefix + "-reg-" + strconv.Itoa(i)
		}
		if err := s.prepare(svcs); err != nil {
			fail(err)
		}
		cs := openWorkers(s, *conc)
		ops, errs, el, err := loop(cs, func(c client, i int) error { return c.register(svcs[i%100], i) })
		report("reg", ops, errs, el, err)
	case "beat":
		svc := *prefix + "-beat"
		if err := s.prepare([]string{svc}); err != nil {
			fail(err)
		}
		cs := openWorkers(s, *conc)
		for w, c := range cs {
			if err := c.beatSetup(svc, w+1); err != nil {
				fail(err)
			}
		}
		ops, errs, el, err := loop(cs, func(c client, _ int) error { return c.beat() })
		report("beat", ops, errs, el, err)
	case "query":
		svc := *prefix + "-query"
		if err := s.prepare([]string{svc}); err != nil {
			fail(err)
		}
		cs := openWorkers(s, *conc)
		for i := 0; i < 10; i++ {
			if err := cs[0].register(svc, i+1); err != nil {
				fail(err)
			}
		}
		ops, errs, el, err := loop(cs, func(c client, _ int) error {
			k, err := c.query(svc)
			if err == nil && k != 10 {
				err = fmt.Errorf("%d instances, want 10", k)
			}
			return err
		})
		report("query", ops, errs, el, err)
	case "watch":
		watch(s)
	case "fill":
		svcs := make([]string, 1000)
		for i := range svcs {
			svcs[i] = *prefix + "-fill-" + strconv.Itoa(i)
		}
		if err := s.prepare(svcs); err != nil {
			fail(err)
		}
		cs := openWorkers(s, *conc)
		var next, errs atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1))
					if i > *n {
						return
					}
					if c.register(svcs[i%1000], i) != nil {
						errs.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		fmt.Printf("target=%s mode=fill n=%d errors=%d seconds=%.1f\n", *target, *n, errs.Load(), time.Since(start).Seconds())
		// The instances of etcd and ZooKeeper live as long as their lease
		// or session: hold them until the script has read the memory.
		if *target != "strata" {
			fmt.Fprintln(os.Stderr, "regbench: holding the instances; stop me with a signal")
			select {}
		}
	default:
		fail(fmt.Errorf("unknown mode %q", *mode))
	}
}

// watch opens *subs subscribers, each on a client of its own, on one
// service, then makes *change changes one after another (a registration
// of a new instance each) and measures, for each change, the time from
// the write's acknowledgement to each subscriber's notification. It
// prints the p50 and p99 over the changes of the time to the last
// subscriber, and over all deliveries.
func watch(s system) {
	svc := *prefix + "-watch"
	if err := s.prepare([]string{svc}); err != nil {
		fail(err)
	}
	writer := openWorkers(s, 1)[0]
	if err := writer.register(svc, 1); err != nil {
		fail(err)
	}
	var (
		mu      sync.Mutex
		got     []int64      // notification times (Unix nanos) of the current change
		armed   atomic.Int64 // subscribers in place for the next change
		opening sync.WaitGroup
	)
	subsC := make([]client, *subs)
	opening.Add(*subs)
	var openErr atomic.Value
	sem := make(chan struct{}, 64)
	for k := 0; k < *subs; k++ {
		sem <- struct{}{}
		go func() {
			defer opening.Done()
			defer func() { <-sem }()
			c, err := s.worker(1000 + k)
			if err != nil {
				openErr.Store(err)
				return
			}
			subsC[k] = c
			err = c.subscribe(svc, func() {
				t := time.Now().UnixNano()
				mu.Lock()
				got = append(got, t)
				mu.Unlock()
			}, func() { armed.Add(1) })
			if err != nil {
				openErr.Store(err)
			}
		}()
	}
	opening.Wait()
	if e := openErr.Load(); e != nil {
		fail(fmt.Errorf("subscribing: %v", e))
	}
	waitArmed(&armed, 60*time.Second)
	time.Sleep(200 * time.Millisecond) // the last blocking queries reach the server and park
	var last, all []time.Duration
	before := 0
	for c := 0; c < *change; c++ {
		mu.Lock()
		got = got[:0]
		mu.Unlock()
		armed.Store(0)
		if err := writer.register(svc, c+2); err != nil {
			fail(err)
		}
		ack := time.Now().UnixNano()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			k := len(got)
			mu.Unlock()
			if k >= *subs {
				break
			}
			if time.Now().After(deadline) {
				fail(fmt.Errorf("change %d reached %d of %d subscribers in 30s", c, k, *subs))
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		var mx int64
		for _, t := range got {
			d := t - ack
			if d < 0 {
				// Notified before the writer had its answer: counted as 0.
				before++
				d = 0
			}
			all = append(all, time.Duration(d))
			mx = max(mx, d)
		}
		mu.Unlock()
		last = append(last, time.Duration(mx))
		waitArmed(&armed, 30*time.Second)
		time.Sleep(50 * time.Millisecond) // strata's re-armed blocking queries reach the server
	}
	p := func(s []time.Duration, q float64) float64 {
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[int(q*float64(len(s)-1)+0.5)]) / 1e6
	}
	fmt.Printf("target=%s mode=watch subs=%d changes=%d last_p50_ms=%.1f last_p99_ms=%.1f last_max_ms=%.1f all_p50_ms=%.1f all_p99_ms=%.1f before_ack=%d\n",
		*target, *subs, *change, p(last, 0.5), p(last, 0.99), p(last, 1), p(all, 0.5), p(all, 0.99), before)
}

// waitArmed waits until every subscriber is in place again.
func waitArmed(armed *atomic.Int64, d time.Duration) {
	deadline := time.Now().Add(d)
	for armed.Load() < int64(*subs) {
		if time.Now().After(deadline) {
			fail(fmt.Errorf("%d of %d subscribers in place after %v", armed.Load(), *subs, d))
		}
		time.Sleep(time.Millisecond)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "regbench:", err)
	os.Exit(1)
}
