package admin

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	backendLabels = []string{"pool", "backend"}

	descBackendUp = prometheus.NewDesc("strata_backend_up",
		"1 when the backend may take new traffic: state up, healthy, not ejected, effective weight above 0.",
		backendLabels, nil)
	descBackendHealthy = prometheus.NewDesc("strata_backend_healthy",
		"1 when active health checks last found the backend healthy.",
		backendLabels, nil)
	descBackendWeight = prometheus.NewDesc("strata_backend_weight",
		"Configured weight of the backend.",
		backendLabels, nil)
	descBackendEffectiveWeight = prometheus.NewDesc("strata_backend_effective_weight",
		"Weight the pickers use now: the configured weight, ramped during slow start, 0 when the backend takes no new traffic.",
		backendLabels, nil)
	descBackendActive = prometheus.NewDesc("strata_backend_active",
		"Connections (l4) or requests (l7) in flight to the backend.",
		backendLabels, nil)
	descBackendRequests = prometheus.NewDesc("strata_backend_requests_total",
		"Connections or requests sent to the backend.",
		backendLabels, nil)
	descBackendFailures = prometheus.NewDesc("strata_backend_failures_total",
		"Connections or requests to the backend that failed.",
		backendLabels, nil)
	descBackendEjections = prometheus.NewDesc("strata_backend_ejections_total",
		"Times passive health checking ejected the backend.",
		backendLabels, nil)
	descPoolReady = prometheus.NewDesc("strata_pool_ready_backends",
		"Backends of the pool that may take new traffic.",
		[]string{"pool"}, nil)
	descPoolBackends = prometheus.NewDesc("strata_pool_backends",
		"Backends in the pool, ready or not.",
		[]string{"pool"}, nil)
)

// poolCollector reads the pools' snapshots at scrape time. Data planes
// already count into the backends' atomic Stats; exporting from there costs
// them nothing, where a prometheus.CounterVec per request would cost a
// label lookup on every one.
type poolCollector struct {
	src atomic.Pointer[Source]
}

var _ prometheus.Collector = (*poolCollector)(nil)

func newPoolCollector(src Source) *poolCollector {
	c := &poolCollector{}
	c.setSource(src)
	return c
}

func (c *poolCollector) setSource(src Source) { c.src.Store(&src) }

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descBackendUp, descBackendHealthy, descBackendWeight, descBackendEffectiveWeight,
		descBackendActive, descBackendRequests, descBackendFailures, descBackendEjections,
		descPoolReady, descPoolBackends,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, p := range (*c.src.Load()).Pools() {
		snap := p.Snapshot()
		// Two pools of one name would make the whole scrape fail on
		// duplicate series; report the first and let the status API show
		// the confusion.
		if seen[snap.Pool] {
			continue
		}
		seen[snap.Pool] = true
		ch <- prometheus.MustNewConstMetric(descPoolReady, prometheus.GaugeValue, float64(len(snap.Ready)), snap.Pool)
		ch <- prometheus.MustNewConstMetric(descPoolBackends, prometheus.GaugeValue, float64(len(snap.All)), snap.Pool)
		for _, b := range snap.All {
			gauge := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, snap.Pool, b.Name)
			}
			counter := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, snap.Pool, b.Name)
			}
			gauge(descBackendUp, boolFloat(b.Available()))
			gauge(descBackendHealthy, boolFloat(b.Healthy))
			gauge(descBackendWeight, float64(b.Weight))
			gauge(descBackendEffectiveWeight, float64(b.EffectiveWeight))
			if st := b.Stats; st != nil {
				gauge(descBackendActive, float64(st.Active.Load()))
				counter(descBackendRequests, float64(st.Requests.Load()))
				counter(descBackendFailures, float64(st.Failures.Load()))
				counter(descBackendEjections, float64(st.Ejections.Load()))
			}
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
