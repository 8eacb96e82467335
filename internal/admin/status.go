package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

// Status is the body of GET /api/v1/status. It is exported so that clients
// in this module (strata ctl, tests) decode the same shape the API writes.
type Status struct {
	Version       string       `json:"version"`
	StartTime     time.Time    `json:"start_time"`
	UptimeSeconds float64      `json:"uptime_seconds"`
	Pools         []PoolStatus `json:"pools"`
	// BGP is the l4 BGP speaker's state (sessions, announced prefixes,
	// drained), absent when the node runs none.
	BGP any `json:"bgp,omitempty"`
}

// PoolStatus is one pool as of its current snapshot, and the body of
// GET /api/v1/pools/{pool}.
type PoolStatus struct {
	Name string `json:"name"`
	// Version changes with every snapshot the pool publishes.
	Version uint64 `json:"version"`
	// Ready counts the backends that may take new traffic; Total counts all.
	Ready    int             `json:"ready"`
	Total    int             `json:"total"`
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus is one backend of a snapshot, and the body of
// GET /api/v1/pools/{pool}/backends/{backend} and of every write.
type BackendStatus struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Zone    string            `json:"zone,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	// State is the administrative state: up, down, draining, maintenance.
	// It is a string, not an upstream.State, so that clients can decode it.
	State   string `json:"state"`
	Healthy bool   `json:"healthy"`
	Ejected bool   `json:"ejected"`
	// Available is true when the backend takes new traffic.
	Available       bool `json:"available"`
	Weight          int  `json:"weight"`
	EffectiveWeight int  `json:"effective_weight"`
	// Status is upstream.Backend.Status(): the one word an operator reads.
	Status    string `json:"status"`
	Active    int64  `json:"active"`
	Requests  uint64 `json:"requests"`
	Failures  uint64 `json:"failures"`
	Ejections int64  `json:"ejections"`
	// Health is the Source's active-check detail, absent when it has none.
	Health json.RawMessage `json:"health,omitempty"`
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	pools := s.opts.Source.Pools()
	st := Status{
		Version:       s.opts.Version,
		StartTime:     s.started.UTC().Truncate(time.Second),
		UptimeSeconds: time.Since(s.started).Truncate(time.Millisecond).Seconds(),
		Pools:         make([]PoolStatus, 0, len(pools)),
	}
	for _, p := range pools {
		st.Pools = append(st.Pools, s.poolStatus(p.Snapshot()))
	}
	if ss, ok := s.opts.Source.(StatusSource); ok {
		st.BGP = ss.BGPStatus()
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handlePool(w http.ResponseWriter, r *http.Request) {
	p, ok := s.findPool(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.poolStatus(p.Snapshot()))
}

func (s *Server) handleBackend(w http.ResponseWriter, r *http.Request) {
	_, b, ok := s.findBackend(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.backendStatus(b))
}

// findPool resolves {pool}, answering 404 itself when there is none.
func (s *Server) findPool(w http.ResponseWriter, r *http.Request) (*upstream.Pool, bool) {
	name := r.PathValue("pool")
	for _, p := range s.opts.Source.Pools() {
		if p.Name() == name {
			return p, true
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no pool %q", name))
	return nil, false
}

// findBackend resolves {pool} and {backend} in the pool's current
// snapshot, answering 404 itself when either is missing.
func (s *Server) findBackend(w http.ResponseWriter, r *http.Request) (*upstream.Pool, *upstream.Backend, bool) {
	p, ok := s.findPool(w, r)
	if !ok {
		return nil, nil, false
	}
	name := r.PathValue("backend")
	b := p.Snapshot().Lookup(name)
	if b == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pool %s: no backend %q", p.Name(), name))
		return nil, nil, false
	}
	return p, b, true
}

func (s *Server) poolStatus(snap *upstream.Snapshot) PoolStatus {
	ps := PoolStatus{
		Name:     snap.Pool,
		Version:  snap.Version,
		Ready:    len(snap.Ready),
		Total:    len(snap.All),
		Backends: make([]BackendStatus, 0, len(snap.All)),
	}
	for _, b := range snap.All {
		ps.Backends = append(ps.Backends, s.backendStatus(b))
	}
	return ps
}

func (s *Server) backendStatus(b *upstream.Backend) BackendStatus {
	bs := BackendStatus{
		Name:            b.Name,
		Address:         b.Addr,
		Zone:            b.Zone,
		Tags:            b.Tags,
		State:           b.State.String(),
		Healthy:         b.Healthy,
		Ejected:         b.Ejected,
		Available:       b.Available(),
		Weight:          b.Weight,
		EffectiveWeight: b.EffectiveWeight,
		Status:          b.Status(),
		Health:          s.healthDetail(b.Pool, b.Name),
	}
	if st := b.Stats; st != nil {
		bs.Active = st.Active.Load()
		bs.Requests = st.Requests.Load()
		bs.Failures = st.Failures.Load()
		bs.Ejections = st.Ejections.Load()
	}
	return bs
}

// healthDetail marshals the Source's detail here rather than with the
// whole response, so that one value that cannot be encoded costs its own
// backend's detail and not the operator's view of every pool.
func (s *Server) healthDetail(pool, backend string) json.RawMessage {
	d := s.opts.Source.HealthDetail(pool, backend)
	if d == nil {
		return nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		b, _ = json.Marshal(errorBody{Error: fmt.Sprintf("encoding health detail: %v", err)})
	}
	return b
}
