package registry

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Blocking queries and watch streams park a goroutine and a connection on
// the node for as long as the client likes. They are bounded three ways:
// in all (Options.MaxParked), per client address (MaxParkedPerClient), and
// per write (WatchWriteTimeout), so a flood of subscribers, one greedy
// host or clients that stop reading cannot exhaust the node.

// parkStats counts what the bounds refused, for Prometheus.
type parkStats struct {
	refusedNode   atomic.Uint64
	refusedClient atomic.Uint64
	writeTimeouts atomic.Uint64
	// refusedToken and refusedLimit count writes refused for a missing
	// or wrong token and by a limit (on the leader, which decides).
	refusedToken atomic.Uint64
	refusedLimit atomic.Uint64
}

// park counts a blocking query or watch in, or answers 429 with
// Retry-After when the node or the client has too many parked already.
// The caller must call release when the request ends.
func (n *Node) park(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if n.parked.Add(1) > int64(n.opts.MaxParked) {
		n.parked.Add(-1)
		n.stats.refusedNode.Add(1)
		w.Header().Set("Retry-After", "1")
		writeErr(w, errf(http.StatusTooManyRequests, "registry: %d blocking queries and watches are parked on this node already (registry.max_watchers); retry", n.opts.MaxParked))
		return nil, false
	}
	ip := clientIP(r)
	n.parkedMu.Lock()
	c := n.parkedBy[ip]
	if c >= n.opts.MaxParkedPerClient {
		n.parkedMu.Unlock()
		n.parked.Add(-1)
		n.stats.refusedClient.Add(1)
		w.Header().Set("Retry-After", "1")
		writeErr(w, errf(http.StatusTooManyRequests, "registry: client %s has %d blocking queries and watches parked already (registry.max_watchers_per_client); retry", ip, c))
		return nil, false
	}
	n.parkedBy[ip] = c + 1
	n.parkedMu.Unlock()
	return func() {
		n.parkedMu.Lock()
		if n.parkedBy[ip] <= 1 {
			delete(n.parkedBy, ip)
		} else {
			n.parkedBy[ip]--
		}
		n.parkedMu.Unlock()
		n.parked.Add(-1)
	}, true
}

// writeParked writes and flushes one answer of a parked request under a
// write deadline. The server has no WriteTimeout (a watch lasts as long
// as the client wants), so without it a client that stops reading would
// hold its goroutine and slot until it disconnects. The deadline stays
// for the end of the response; net/http clears it before the next request
// on the connection.
func (n *Node) writeParked(w http.ResponseWriter, b []byte) error {
	rc := http.NewResponseController(w)
	start := time.Now()
	rc.SetWriteDeadline(start.Add(n.opts.WatchWriteTimeout))
	_, err := w.Write(b)
	if err == nil {
		err = rc.Flush()
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) >= n.opts.WatchWriteTimeout {
			n.stats.writeTimeouts.Add(1)
		}
	}
	return err
}

var (
	descParked        = prometheus.NewDesc("strata_registry_watchers", "Blocking queries and watch streams parked on the node now.", nil, nil)
	descParkedRefused = prometheus.NewDesc("strata_registry_watchers_refused_total", "Blocking queries and watches answered 429, by the bound they hit (node: registry.max_watchers; client: registry.max_watchers_per_client).", []string{"limit"}, nil)
	descParkedClients = prometheus.NewDesc("strata_registry_watcher_clients", "Client addresses with a blocking query or watch parked now.", nil, nil)
	descWriteTimeouts = prometheus.NewDesc("strata_registry_watch_write_timeouts_total", "Blocking query answers and watch lines not written within registry.watch_write_timeout; the client was disconnected.", nil, nil)
	descWritesRefused = prometheus.NewDesc("strata_registry_writes_refused_total", "Writes the leader refused, by reason (token: a missing or wrong token; limit: one of registry.limits).", []string{"reason"}, nil)
)

// parkCollector exposes the bounds of the running node, read at scrape
// time; it reports nothing while no node runs.
type parkCollector struct{ s *Server }

// Collector returns the server's Prometheus collector.
func (s *Server) Collector() prometheus.Collector { return parkCollector{s} }

func (c parkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descParked, descParkedRefused, descParkedClients, descWriteTimeouts, descWritesRefused} {
		ch <- d
	}
}

func (c parkCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.s.Node()
	if n == nil {
		return
	}
	n.parkedMu.Lock()
	clients := len(n.parkedBy)
	n.parkedMu.Unlock()
	ch <- prometheus.MustNewConstMetric(descParked, prometheus.GaugeValue, float64(n.parked.Load()))
	ch <- prometheus.MustNewConstMetric(descParkedClients, prometheus.GaugeValue, float64(clients))
	ch <- prometheus.MustNewConstMetric(descParkedRefused, prometheus.CounterValue, float64(n.stats.refusedNode.Load()), "node")
	ch <- prometheus.MustNewConstMetric(descParkedRefused, prometheus.CounterValue, float64(n.stats.refusedClient.Load()), "client")
	ch <- prometheus.MustNewConstMetric(descWriteTimeouts, prometheus.CounterValue, float64(n.stats.writeTimeouts.Load()))
	ch <- prometheus.MustNewConstMetric(descWritesRefused, prometheus.CounterValue, float64(n.stats.refusedToken.Load()), "token")
	ch <- prometheus.MustNewConstMetric(descWritesRefused, prometheus.CounterValue, float64(n.stats.refusedLimit.Load()), "limit")
}

// startStream begins a streamed answer (a watch) to a client of the
// namespace ns: it checks the namespace's token, parks the client, and
// returns a context that ends when the client goes or the node closes.
// When ok, the caller defers done, which releases all of it.
func (n *Node) startStream(w http.ResponseWriter, r *http.Request, ns string) (ctx context.Context, done func(), ok bool) {
	if !n.namespaceOK(r, ns) {
		writeErr(w, errf(http.StatusForbidden, "namespace %q needs an access token", ns))
		return nil, nil, false
	}
	unpark, ok := n.park(w, r)
	if !ok {
		return nil, nil, false
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(n.ctx, cancel)
	return ctx, func() {
		cancel()
		stop()
		unpark()
	}, true
}
