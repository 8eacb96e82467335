package dnslb

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Counters are sharded by worker and summed when scraped: a query touches
// only its own worker's cache lines, and the labels cost nothing per query.
const statShards = 16

// typeBuckets are the query types counted by name; others count as OTHER.
var typeBuckets = []uint16{typeA, typeAAAA, typeCNAME, typeMX, typeTXT, typeSRV, 257 /* CAA */, typeNS, typeSOA, typeANY, typeAXFR, typeIXFR}
var typeNames = []string{"A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "SOA", "ANY", "AXFR", "IXFR", "OTHER"}

var rcodeNames = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "NOTAUTH"}

const nTypes, nRcodes = 13, 8

func typeIndex(t uint16) int {
	for i, b := range typeBuckets {
		if b == t {
			return i
		}
	}
	return len(typeBuckets)
}

func rcodeIndex(rc int) int {
	switch rc {
	case rcodeBadVers:
		return 6
	case 9: // NOTAUTH
		return 7
	}
	if rc < 0 || rc > 5 {
		return 2
	}
	return rc
}

// zoneStats counts one zone's queries. It outlives reloads: the registry
// hands the same one to every table that serves the zone.
type zoneStats struct {
	name   string
	shards [statShards]struct {
		n [nTypes][nRcodes]atomic.Uint64
		_ [64]byte
	}
}

func (z *zoneStats) add(shard int, qtype uint16, rcode int) {
	z.shards[shard%statShards].n[typeIndex(qtype)][rcodeIndex(rcode)].Add(1)
}

// latency is a histogram of answer times with power-of-two buckets from
// 1µs (sharded like the counters).
const latBuckets = 16

type latency struct {
	shards [statShards]struct {
		b   [latBuckets + 1]atomic.Uint64
		sum atomic.Uint64 // nanoseconds
		_   [64]byte
	}
}

func (l *latency) observe(shard int, ns int64) {
	s := &l.shards[shard%statShards]
	i := 0
	if ns > 1000 {
		i = min(bits.Len64(uint64(ns-1)/1000), latBuckets)
	}
	s.b[i].Add(1)
	s.sum.Add(uint64(ns))
}

// statsRegistry holds every counter of the role and exports them to
// Prometheus.
type statsRegistry struct {
	mu       sync.Mutex
	zones    map[string]*zoneStats
	none     *zoneStats // queries for no zone of ours
	lat      latency
	removals sync.Map // pool name → *atomic.Uint64
	tc       atomic.Uint64
	rrlDrop  atomic.Uint64
	rrlSlip  atomic.Uint64

	queries, latDesc, remDesc, rrlDesc, tcDesc *prometheus.Desc
}

func newStatsRegistry() *statsRegistry {
	return &statsRegistry{
		zones:   map[string]*zoneStats{},
		none:    &zoneStats{name: ""},
		queries: prometheus.NewDesc("strata_dns_queries_total", "DNS queries answered, by zone (empty: not ours), query type and rcode.", []string{"zone", "type", "rcode"}, nil),
		latDesc: prometheus.NewDesc("strata_dns_answer_duration_seconds", "Time from reading a query to having its answer ready.", nil, nil),
		remDesc: prometheus.NewDesc("strata_dns_health_removals_total", "Addresses that left the DNS answers of a pool because they stopped being ready (health, ejection, drain).", []string{"pool"}, nil),
		rrlDesc: prometheus.NewDesc("strata_dns_rrl_responses_total", "Responses limited by RRL, by action (drop or slip).", []string{"action"}, nil),
		tcDesc:  prometheus.NewDesc("strata_dns_truncated_total", "UDP responses sent truncated (TC) because they did not fit.", nil, nil),
	}
}

func (r *statsRegistry) zone(name string) *zoneStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	z := r.zones[name]
	if z == nil {
		z = &zoneStats{name: name}
		r.zones[name] = z
	}
	return z
}

func (r *statsRegistry) removal(pool string) *atomic.Uint64 {
	v, _ := r.removals.LoadOrStore(pool, new(atomic.Uint64))
	return v.(*atomic.Uint64)
}

// Describe implements prometheus.Collector.
func (r *statsRegistry) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.queries
	ch <- r.latDesc
	ch <- r.remDesc
	ch <- r.rrlDesc
	ch <- r.tcDesc
}

// Collect implements prometheus.Collector.
func (r *statsRegistry) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	zs := []*zoneStats{r.none}
	for _, z := range r.zones {
		zs = append(zs, z)
	}
	r.mu.Unlock()
	for _, z := range zs {
		for t := 0; t < nTypes; t++ {
			for rc := 0; rc < nRcodes; rc++ {
				var n uint64
				for s := range z.shards {
					n += z.shards[s].n[t][rc].Load()
				}
				if n > 0 {
					ch <- prometheus.MustNewConstMetric(r.queries, prometheus.CounterValue, float64(n), z.name, typeNames[t], rcodeNames[rc])
				}
			}
		}
	}
	var count, sum uint64
	cum := map[float64]uint64{}
	var per [latBuckets + 1]uint64
	for s := range r.lat.shards {
		for i := range per {
			per[i] += r.lat.shards[s].b[i].Load()
		}
		sum += r.lat.shards[s].sum.Load()
	}
	for i := 0; i < latBuckets; i++ {
		count += per[i]
		cum[float64(uint64(1000)<<i)/1e9] = count
	}
	count += per[latBuckets]
	ch <- prometheus.MustNewConstHistogram(r.latDesc, count, float64(sum)/1e9, cum)
	r.removals.Range(func(k, v any) bool {
		ch <- prometheus.MustNewConstMetric(r.remDesc, prometheus.CounterValue, float64(v.(*atomic.Uint64).Load()), k.(string))
		return true
	})
	ch <- prometheus.MustNewConstMetric(r.rrlDesc, prometheus.CounterValue, float64(r.rrlDrop.Load()), "drop")
	ch <- prometheus.MustNewConstMetric(r.rrlDesc, prometheus.CounterValue, float64(r.rrlSlip.Load()), "slip")
	ch <- prometheus.MustNewConstMetric(r.tcDesc, prometheus.CounterValue, float64(r.tc.Load()))
}
