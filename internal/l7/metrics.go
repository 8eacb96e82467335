package l7

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/upstream"
)

// Prometheus metrics of the l7 role. Counters are resolved to their label
// values once — per route when Apply builds a table, per backend the first
// time it answers — so a request updates a counter and a histogram through
// pointers it already holds and never looks labels up. A backend's series
// are deleted once it has left its pool (sweepBackendsLocked), so pools
// that follow a registry do not accumulate them.
//
// Per-backend requests, failures, in-flight requests and passive ejections
// are exported by the admin package from the pools' own counters
// (strata_backend_*); the metrics here add what only the data plane knows:
// status classes and latency.
type metrics struct {
	routeRequests *prometheus.CounterVec
	routeDuration *prometheus.HistogramVec
	routeRetries  *prometheus.CounterVec
	backendResps  *prometheus.CounterVec
	backendDur    *prometheus.HistogramVec
	connsActive   *prometheus.GaugeVec
	connsTotal    *prometheus.CounterVec
	tunnels       prometheus.Gauge

	mu       sync.Mutex
	backends atomic.Pointer[map[*upstream.Stats]*backendMetrics]
	// pools are the pools of the last Apply, whose backends are the ones
	// that keep their series (under mu); swept is the number of backends
	// with series after the last sweep (sweepBackendsLocked).
	pools map[string]*upstream.Pool
	swept int
	// retainAddrs, when set, is told the backend addresses still in the
	// pools after each sweep (transport.retain).
	retainAddrs func(live map[string]bool)
	// routes are the (listener, route) pairs that have series, so that a
	// reload can delete those of routes it removed (under mu).
	routes map[routeKey]struct{}
}

type routeKey struct{ listener, route string }

// statusClasses are the label values of the code label, by status/100.
var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func classIndex(status int) int {
	if status == 0 {
		return 2 // net/http sends 200 when a handler writes nothing
	}
	if c := status / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

// latencyBuckets run from 0.5 ms to 10 s: a proxy on a LAN answers in
// under a millisecond, and the tail is what operators look for.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		routeRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_l7_requests_total",
			Help: "Requests answered, by listener, route and status class (1xx … 5xx).",
		}, []string{"listener", "route", "code"}),
		routeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_l7_request_duration_seconds",
			Help:    "Time from the request head to the end of the response, by listener and route.",
			Buckets: latencyBuckets,
		}, []string{"listener", "route"}),
		routeRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_l7_retries_total",
			Help: "Requests sent again to another backend, by listener and route.",
		}, []string{"listener", "route"}),
		backendResps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_l7_backend_responses_total",
			Help: "Responses relayed from a backend (the last attempt of each request), by pool, backend and status class.",
		}, []string{"pool", "backend", "code"}),
		backendDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_l7_backend_request_duration_seconds",
			Help:    "Time from the request head to the end of the response, by the pool and backend that answered it.",
			Buckets: latencyBuckets,
		}, []string{"pool", "backend"}),
		connsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_l7_connections_active",
			Help: "Client connections open now, by listener.",
		}, []string{"listener"}),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_l7_connections_total",
			Help: "Client connections accepted, by listener.",
		}, []string{"listener"}),
		tunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_l7_tunnels_active",
			Help: "Upgraded connections (WebSocket and the like) open now.",
		}),
	}
	empty := map[*upstream.Stats]*backendMetrics{}
	m.backends.Store(&empty)
	if reg != nil {
		reg.MustRegister(m.routeRequests, m.routeDuration, m.routeRetries, backendCollector{m},
			m.connsActive, m.connsTotal, m.tunnels)
	}
	return m
}

// routeMetrics are one route's resolved series.
type routeMetrics struct {
	name     string
	requests [len(statusClasses)]prometheus.Counter
	duration prometheus.Observer
	retries  prometheus.Counter
}

func (m *metrics) forRoute(listener, route string) *routeMetrics {
	m.mu.Lock()
	if m.routes == nil {
		m.routes = map[routeKey]struct{}{}
	}
	m.routes[routeKey{listener, route}] = struct{}{}
	m.mu.Unlock()
	rm := &routeMetrics{
		name:     route,
		duration: m.routeDuration.WithLabelValues(listener, route),
		retries:  m.routeRetries.WithLabelValues(listener, route),
	}
	for i, c := range statusClasses {
		rm.requests[i] = m.routeRequests.WithLabelValues(listener, route, c)
	}
	return rm
}

// retainRoutes deletes the series of every route not in keep, once a
// reload has removed it, so that /metrics does not list old routes
// forever. Requests still in flight on a removed route count into series
// no longer exported; a route that comes back starts again from zero,
// which Prometheus reads as a counter reset.
func (m *metrics) retainRoutes(keep map[routeKey]struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.routes {
		if _, ok := keep[k]; ok {
			continue
		}
		l := prometheus.Labels{"listener": k.listener, "route": k.route}
		m.routeRequests.DeletePartialMatch(l)
		m.routeDuration.Delete(l)
		m.routeRetries.Delete(l)
		delete(m.routes, k)
	}
}

// backendMetrics are one backend's resolved series.
type backendMetrics struct {
	pool, name string
	responses  [len(statusClasses)]prometheus.Counter
	duration   prometheus.Observer
}

// forBackend returns b's series, resolving them the first time. Backends
// are keyed by their Stats, which live as long as the backend stays in its
// pool, whatever snapshots come and go.
func (m *metrics) forBackend(b *upstream.Backend) *backendMetrics {
	if bm := (*m.backends.Load())[b.Stats]; bm != nil {
		return bm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.backends.Load()
	if bm := old[b.Stats]; bm != nil {
		return bm
	}
	if len(old) >= 2*max(m.swept, 64) {
		// Backends come and go with registry-fed pools: sweeping each
		// time the map has doubled keeps it, and the series, within
		// twice the backends that are still there, at a constant cost
		// per backend added.
		old = m.sweepBackendsLocked()
	}
	bm := &backendMetrics{pool: b.Pool, name: b.Name, duration: m.backendDur.WithLabelValues(b.Pool, b.Name)}
	for i, c := range statusClasses {
		bm.responses[i] = m.backendResps.WithLabelValues(b.Pool, b.Name, c)
	}
	next := make(map[*upstream.Stats]*backendMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[b.Stats] = bm
	m.backends.Store(&next)
	return bm
}

// observe records one finished request.
func (m *metrics) observe(rm *routeMetrics, b *upstream.Backend, status int, d time.Duration, retries int) {
	ci := classIndex(status)
	sec := d.Seconds()
	if rm != nil {
		rm.requests[ci].Inc()
		rm.duration.Observe(sec)
		if retries > 0 {
			rm.retries.Add(float64(retries))
		}
	}
	if b != nil && b.Stats != nil {
		bm := m.forBackend(b)
		bm.responses[ci].Inc()
		bm.duration.Observe(sec)
	}
}

// setPools records the pools of an Apply and drops the series of backends
// that are in none of them any more.
func (m *metrics) setPools(pools map[string]*upstream.Pool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pools = pools
	m.sweepBackendsLocked()
}

// sweepBackendsLocked deletes the series of every backend that left its
// pool (a registry deregistration, a reload), so that /metrics and the
// map of resolved series do not grow with every backend ever seen. A
// backend is kept while its Stats are in a current pool's snapshot; the
// series of a name that came back under new Stats (a pool rebuilt by a
// reload) are kept too, since the two share their labels. A request in
// flight to a departed backend may bring its series back when it ends;
// the next sweep takes them again.
func (m *metrics) sweepBackendsLocked() map[*upstream.Stats]*backendMetrics {
	type label struct{ pool, name string }
	liveStats := map[*upstream.Stats]bool{}
	liveNames := map[label]bool{}
	liveAddrs := map[string]bool{}
	for _, p := range m.pools {
		for _, b := range p.Snapshot().All {
			liveStats[b.Stats] = true
			liveNames[label{b.Pool, b.Name}] = true
			liveAddrs[b.Addr] = true
		}
	}
	if m.retainAddrs != nil {
		m.retainAddrs(liveAddrs)
	}
	old := *m.backends.Load()
	next := make(map[*upstream.Stats]*backendMetrics, len(old))
	for k, bm := range old {
		if liveStats[k] {
			next[k] = bm
			continue
		}
		if !liveNames[label{bm.pool, bm.name}] {
			l := prometheus.Labels{"pool": bm.pool, "backend": bm.name}
			m.backendResps.DeletePartialMatch(l)
			m.backendDur.Delete(l)
		}
	}
	m.backends.Store(&next)
	m.swept = len(next)
	return next
}

// backendCollector exports the per-backend series, swept first so that a
// scrape never shows a backend that has left.
type backendCollector struct{ m *metrics }

func (c backendCollector) Describe(ch chan<- *prometheus.Desc) {
	c.m.backendResps.Describe(ch)
	c.m.backendDur.Describe(ch)
}

func (c backendCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	c.m.sweepBackendsLocked()
	c.m.mu.Unlock()
	c.m.backendResps.Collect(ch)
	c.m.backendDur.Collect(ch)
}
