// Command regbench measures a service registry over HTTP, the same way for
// strata and for Consul, so the two can be compared in one run:
//
//	regbench -target strata -addr 127.0.0.1:8848 -mode reg     registrations/s
//	regbench -target consul -addr 127.0.0.1:8500 -mode query   healthy-instance queries/s
//	regbench ... -mode watch   p99 of a change reaching -subs subscribers (blocking queries)
//	regbench ... -mode fill    registers -n instances (for the memory figure)
//
// Every loop is bounded by -d or -n. It prints one line of key=value.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var (
	target = flag.String("target", "strata", "strata or consul")
	addr   = flag.String("addr", "127.0.0.1:8848", "HTTP address of the registry")
	mode   = flag.String("mode", "reg", "reg, query, watch or fill")
	conc   = flag.Int("c", 32, "concurrent clients")
	dur    = flag.Duration("d", 5*time.Second, "duration of reg and query")
	n      = flag.Int("n", 100000, "instances for fill")
	subs   = flag.Int("subs", 1000, "subscribers for watch")
	change = flag.Int("changes", 20, "changes for watch")
	prefix = flag.String("prefix", "b", "service name prefix, so runs do not collide")
)

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxIdleConns: 4096}, Timeout: 60 * time.Second}

func do(method, url string, body []byte) ([]byte, http.Header, error) {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return b, resp.Header, fmt.Errorf("%s %s: %s %s", method, url, resp.Status, b)
	}
	return b, resp.Header, err
}

func ip(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// register adds instance i of service svc.
func register(svc string, i int) error {
	var b []byte
	switch *target {
	case "consul":
		b, _ = json.Marshal(map[string]any{"ID": svc + "-" + strconv.Itoa(i), "Name": svc, "Address": ip(i), "Port": 80,
			"Check": map[string]any{"CheckID": svc + "-" + strconv.Itoa(i), "TTL": "10m", "Status": "passing"}})
		_, _, err := do("PUT", "http://"+*addr+"/v1/agent/service/register", b)
		return err
	default:
		b, _ = json.Marshal(map[string]any{"service": svc, "ip": ip(i), "port": 80})
		_, _, err := do("PUT", "http://"+*addr+"/v1/registry/instances", b)
		return err
	}
}

// query asks for the healthy instances of svc after index (0: at once) and
// returns the new index and the number of instances.
func query(svc string, index uint64) (uint64, int, error) {
	var url string
	switch *target {
	case "consul":
		url = "http://" + *addr + "/v1/health/service/" + svc + "?passing=true"
		if index > 0 {
			url += "&wait=30s&index=" + strconv.FormatUint(index, 10)
		}
	default:
		url = "http://" + *addr + "/v1/registry/services/public/DEFAULT_GROUP/" + svc
		if index > 0 {
			url += "?wait=30s&index=" + strconv.FormatUint(index, 10)
		}
	}
	b, h, err := do("GET", url, nil)
	if err != nil {
		return 0, 0, err
	}
	hdr := "X-Strata-Index"
	if *target == "consul" {
		hdr = "X-Consul-Index"
	}
	idx, _ := strconv.ParseUint(h.Get(hdr), 10, 64)
	var count int
	if *target == "consul" {
		var v []json.RawMessage
		json.Unmarshal(b, &v)
		count = len(v)
	} else {
		var v struct{ Instances []json.RawMessage }
		json.Unmarshal(b, &v)
		count = len(v.Instances)
	}
	return idx, count, nil
}

// loop runs fn on *conc workers for *dur and returns operations and errors.
func loop(fn func(worker, i int) error) (ops, errs int64, el time.Duration) {
	var o, e atomic.Int64
	var next atomic.Int64
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if fn(w, int(next.Add(1))) != nil {
					e.Add(1)
				} else {
					o.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return o.Load(), e.Load(), time.Since(start)
}

func main() {
	flag.Parse()
	switch *mode {
	case "reg":
		ops, errs, el := loop(func(_, i int) error { return register(*prefix+"-reg-"+strconv.Itoa(i%100), i) })
		fmt.Printf("target=%s mode=reg c=%d ops=%d errors=%d per_sec=%.0f\n", *target, *conc, ops, errs, float64(ops)/el.Seconds())
	case "query":
		svc := *prefix + "-query"
		for i := 0; i < 10; i++ {
			if err := register(svc, i+1); err != nil {
				fail(err)
			}
		}
		ops, errs, el := loop(func(_, _ int) error {
			_, c, err := query(svc, 0)
			if err == nil && c != 10 {
				err = fmt.Errorf("%d instances", c)
			}
			return err
		})
		fmt.Printf("target=%s mode=query c=%d ops=%d errors=%d per_sec=%.0f\n", *target, *conc, ops, errs, float64(ops)/el.Seconds())
	case "watch":
		watch()
	case "fill":
		var next atomic.Int64
		var errs atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < *conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1))
					if i > *n {
						return
					}
					if register(*prefix+"-fill-"+strconv.Itoa(i%1000), i) != nil {
						errs.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		fmt.Printf("target=%s mode=fill n=%d errors=%d seconds=%.1f\n", *target, *n, errs.Load(), time.Since(start).Seconds())
	default:
		fail(fmt.Errorf("unknown mode %q", *mode))
	}
}

// watch parks *subs blocking queries on one service, makes *change
// changes one after another, and measures how long each change takes to
// reach each subscriber.
func watch() {
	svc := *prefix + "-watch"
	if err := register(svc, 1); err != nil {
		fail(err)
	}
	idx0, _, err := query(svc, 0)
	if err != nil {
		fail(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var changedAt atomic.Int64 // unix nanos of the latest change
	var seen sync.WaitGroup
	var ready sync.WaitGroup
	stop := make(chan struct{})
	for s := 0; s < *subs; s++ {
		ready.Add(1)
		go func() {
			idx := idx0
			first := true
			for {
				if first {
					ready.Done()
					first = false
				}
				ni, _, err := query(svc, idx)
				select {
				case <-stop:
					return
				default:
				}
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if ni != idx {
					d := time.Duration(time.Now().UnixNano() - changedAt.Load())
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
					idx = ni
					seen.Done()
				}
			}
		}()
	}
	ready.Wait()
	time.Sleep(500 * time.Millisecond) // let every query park
	for c := 0; c < *change; c++ {
		seen.Add(*subs)
		changedAt.Store(time.Now().UnixNano())
		if err := register(svc, c+2); err != nil {
			fail(err)
		}
		done := make(chan struct{})
		go func() { seen.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			fail(fmt.Errorf("change %d did not reach every subscriber in 30s", c))
		}
		time.Sleep(100 * time.Millisecond) // let the subscribers park again
	}
	close(stop)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	fmt.Printf("target=%s mode=watch subs=%d changes=%d deliveries=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n", *target, *subs, *change, len(lat), p(0.5), p(0.99), p(1))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "regbench:", err)
	os.Exit(1)
}
