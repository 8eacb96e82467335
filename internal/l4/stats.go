package l4

import (
	"sync"
	"sync/atomic"

	"github.com/strata-lb/strata/internal/upstream"
)

// Reasons a connection is refused or dropped, counted per service.
const (
	dropNoBackend = iota
	dropMaxConns
	dropRate
	dropFirstByte
	dropDial
	numDrops
)

var dropNames = [numDrops]string{"no_backend", "max_conns", "rate", "first_byte_timeout", "dial"}

// counters are the statistics ipvsadm --stats and --rate show, for a
// service or one backend of it.
type counters struct {
	conns    atomic.Uint64
	inPkts   atomic.Uint64
	outPkts  atomic.Uint64
	inBytes  atomic.Uint64
	outBytes atomic.Uint64
	// active counts established TCP connections; inactive counts
	// half-closed ones and UDP sessions, as LVS's InActConn does.
	active   atomic.Int64
	inactive atomic.Int64
	rates    rateEstimate
}

// rateEstimate holds the per-second rates the estimator last computed,
// and the totals it computed them from.
type rateEstimate struct {
	mu                                sync.Mutex
	cps, inPPS, outPPS, inBPS, outBPS float64
	lastConns, lastInP, lastOutP      uint64
	lastInB, lastOutB                 uint64
}

func (c *counters) estimate(seconds float64) {
	r := &c.rates
	conns, inP, outP, inB, outB := c.conns.Load(), c.inPkts.Load(), c.outPkts.Load(), c.inBytes.Load(), c.outBytes.Load()
	r.mu.Lock()
	r.cps = float64(conns-r.lastConns) / seconds
	r.inPPS = float64(inP-r.lastInP) / seconds
	r.outPPS = float64(outP-r.lastOutP) / seconds
	r.inBPS = float64(inB-r.lastInB) / seconds
	r.outBPS = float64(outB-r.lastOutB) / seconds
	r.lastConns, r.lastInP, r.lastOutP, r.lastInB, r.lastOutB = conns, inP, outP, inB, outB
	r.mu.Unlock()
}

// destStats are a service's counters for one backend, and its overload
// flag for the thresholds.
type destStats struct {
	counters
	overloaded atomic.Bool
}

// svcCounters are one service's counters, per service and per backend.
// They outlive a reload that keeps the service's name.
type svcCounters struct {
	counters
	drops [numDrops]atomic.Uint64
	// open counts connections and sessions from admission to teardown,
	// for max_conns.
	open  atomic.Int64
	dests sync.Map // backend name → *destStats
}

func newSvcCounters() *svcCounters { return &svcCounters{} }

// dest returns the counters of backend b, creating them on first use; the
// lookup of an existing backend takes no lock.
func (s *svcCounters) dest(b *upstream.Backend) *destStats {
	if d, ok := s.dests.Load(b.Name); ok {
		return d.(*destStats)
	}
	d, _ := s.dests.LoadOrStore(b.Name, new(destStats))
	return d.(*destStats)
}

// prune forgets the counters of backends that left the service's pool and
// hold no connection any more, so that a pool following a registry, whose
// backends come and go, does not leave a destStats behind for each. A
// backend that comes back starts from zero, as LVS's does when a real
// server is deleted and added again.
func (s *svcCounters) prune(snap *upstream.Snapshot) {
	in := make(map[string]bool, len(snap.All))
	for _, b := range snap.All {
		in[b.Name] = true
	}
	s.dests.Range(func(k, v any) bool {
		d := v.(*destStats)
		if !in[k.(string)] && d.active.Load() == 0 && d.inactive.Load() == 0 {
			s.dests.Delete(k)
		}
		return true
	})
}

// ServiceStatus is one virtual service with its backends, as GET
// /api/v1/l4/services and strata ctl services show it (ipvsadm -Ln
// --stats --rate).
type ServiceStatus struct {
	Name      string `json:"name"`
	Protocol  string `json:"protocol"`
	Listen    string `json:"listen"`
	Pool      string `json:"pool"`
	Scheduler string `json:"scheduler"`
	// Forward is proxy, dr or tunnel. The kernel's services (dr and
	// tunnel) count only the client → server direction: replies never
	// cross the balancer, so their out counters stay 0.
	Forward string `json:"forward"`
	// Persistent is the persistence timeout in seconds, 0 when off.
	Persistent float64 `json:"persistent_seconds"`
	// Fingerprint identifies the service's Maglev table (16 hex digits
	// of balance.MaglevFingerprint): nodes whose fingerprints are equal
	// send every flow to the same backend. Present for the mh and maglev
	// schedulers and for dr and tunnel services (the kernel's table),
	// while at least one backend is ready.
	Fingerprint string            `json:"fingerprint,omitempty"`
	Stats       Stats             `json:"stats"`
	Drops       map[string]uint64 `json:"drops"`
	Backends    []BackendStats    `json:"backends"`
}

// BackendStats is one real server of a service.
type BackendStats struct {
	Name            string `json:"name"`
	Address         string `json:"address"`
	Status          string `json:"status"`
	Weight          int    `json:"weight"`
	EffectiveWeight int    `json:"effective_weight"`
	Overloaded      bool   `json:"overloaded"`
	// InTable says, for a dr or tunnel service, whether the kernel's
	// Maglev table has the backend now (absent for proxy services). It
	// follows the pool's status within moments: the table is rebuilt
	// after each change.
	InTable *bool `json:"in_table,omitempty"`
	Stats   Stats `json:"stats"`
}

// Stats are ipvsadm's counters and rates.
type Stats struct {
	ActiveConns   int64   `json:"active_conns"`
	InactiveConns int64   `json:"inactive_conns"`
	Conns         uint64  `json:"conns"`
	InPkts        uint64  `json:"in_pkts"`
	OutPkts       uint64  `json:"out_pkts"`
	InBytes       uint64  `json:"in_bytes"`
	OutBytes      uint64  `json:"out_bytes"`
	CPS           float64 `json:"cps"`
	InPPS         float64 `json:"in_pps"`
	OutPPS        float64 `json:"out_pps"`
	InBPS         float64 `json:"in_bps"`
	OutBPS        float64 `json:"out_bps"`
}

func (c *counters) snapshot() Stats {
	c.rates.mu.Lock()
	r := Stats{CPS: c.rates.cps, InPPS: c.rates.inPPS, OutPPS: c.rates.outPPS, InBPS: c.rates.inBPS, OutBPS: c.rates.outBPS}
	c.rates.mu.Unlock()
	r.ActiveConns, r.InactiveConns = c.active.Load(), c.inactive.Load()
	r.Conns, r.InPkts, r.OutPkts = c.conns.Load(), c.inPkts.Load(), c.outPkts.Load()
	r.InBytes, r.OutBytes = c.inBytes.Load(), c.outBytes.Load()
	return r
}
