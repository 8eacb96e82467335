package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ClusterClientOptions are `strata demo cluster-client`'s flags.
type ClusterClientOptions struct {
	URL   string        // what to ask for: the VIP
	Nodes string        // name=address of each l4 node, comma-separated
	Rate  float64       // new connections a second
	For   time.Duration // stop after this long
	Max   int           // … or after this many requests
	Every time.Duration // print the counts this often
}

// seenFromHeader is the app instances' echo of the X-Forwarded-For the
// l7 node gave them: the address the l7 node's client connected from,
// which in the cluster demo is the l4 node that carried the request (a
// proxy-mode l4 node connects from its own address).
const seenFromHeader = "X-Seen-From"

// ClusterClient is the cluster demo's client (`strata demo cluster-client`,
// which RunCluster starts in the client's namespace): it sends Rate
// requests a second to URL, each on a new connection so that each one is
// a new flow for the router's ECMP hash, and prints how many each l4 node
// carried, every Every, until SIGINT or SIGTERM, For or Max. It returns
// the exit status.
func ClusterClient(o ClusterClientOptions, stdout, stderr io.Writer) int {
	names := map[string]string{}
	var order []string
	for _, kv := range strings.Split(o.Nodes, ",") {
		name, addr, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(stderr, "demo cluster-client: -nodes: %q is not name=address\n", kv)
			return 2
		}
		names[addr] = name
		order = append(order, name)
	}
	if o.Rate <= 0 || o.Max <= 0 || o.Every <= 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.For)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		cancel()
	}()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
		if err != nil {
			return "", err
		}
		res, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return "", errors.New(res.Status)
		}
		node := names[res.Header.Get(seenFromHeader)]
		if node == "" {
			node = "other"
		}
		return node, nil
	}

	// The chain may still be filling its pools when the router has its
	// route: wait for a first answer before the counting starts.
	start := time.Now()
	for {
		if _, err := get(); err == nil {
			break
		}
		if ctx.Err() != nil {
			return 0
		}
		if time.Since(start) > 60*time.Second {
			fmt.Fprintf(stderr, "no answer through %s within 60s\n", o.URL)
			return 1
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "first answer through %s after %s; counting\n", o.URL, time.Since(start).Round(10*time.Millisecond))

	var (
		mu         sync.Mutex
		last, all  = map[string]int{}, map[string]int{}
		lastErr    error
		inflight   sync.WaitGroup
		concurrent = make(chan struct{}, 64) // a hung node holds at most this many
	)
	report := func() {
		mu.Lock()
		defer mu.Unlock()
		line := func(m map[string]int) string {
			var b strings.Builder
			for _, n := range append(append([]string{}, order...), "other", "failed") {
				if n != "other" || m[n] > 0 {
					fmt.Fprintf(&b, "%s=%d ", n, m[n])
				}
			}
			return strings.TrimSpace(b.String())
		}
		fmt.Fprintf(stdout, "last %s: %s | total: %s", o.Every, line(last), line(all))
		if lastErr != nil {
			fmt.Fprintf(stdout, " | last error: %v", lastErr)
		}
		fmt.Fprintln(stdout)
		last, lastErr = map[string]int{}, nil
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
	defer tick.Stop()
	every := time.NewTicker(o.Every)
	defer every.Stop()
	for sent := 0; sent < o.Max; {
		select {
		case <-ctx.Done():
			sent = o.Max
		case <-every.C:
			report()
		case <-tick.C:
			select {
			case concurrent <- struct{}{}:
			default:
				continue // 64 requests hang already: skip this tick
			}
			sent++
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				defer func() { <-concurrent }()
				node, err := get()
				if err != nil && ctx.Err() != nil {
					return // cut short by the stop, not a failure
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					node, lastErr = "failed", err
				}
				last[node]++
				all[node]++
			}()
		}
	}
	inflight.Wait()
	report()
	return 0
}
