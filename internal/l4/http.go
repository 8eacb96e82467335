package l4

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/strata-lb/strata/internal/l4/bgp"
)

// Endpoint paths of the l4 admin API.
const (
	PathServices    = "/api/v1/l4/services"
	PathConns       = "/api/v1/l4/conns"
	PathPersistence = "/api/v1/l4/persistence"
	PathBGP         = "/api/v1/l4/bgp"
	PathDrain       = "/api/v1/l4/drain"
	PathUndrain     = "/api/v1/l4/undrain"
)

// BGPStatus is the body of GET /api/v1/l4/bgp and of the drain calls,
// and the "bgp" section of GET /api/v1/status.
type BGPStatus struct {
	// Enabled is false when no config has set l4.bgp.
	Enabled  bool   `json:"enabled"`
	ASN      int64  `json:"asn,omitempty"`
	RouterID string `json:"router_id,omitempty"`
	// Drained is true while an operator has drained the node: every VIP
	// is withdrawn, and the node still serves what arrives.
	Drained   bool       `json:"drained"`
	DrainedAt *time.Time `json:"drained_at,omitempty"`
	// ShuttingDown is true once the node withdrew for good at shutdown
	// and serves out its lameduck time.
	ShuttingDown bool             `json:"shutting_down"`
	Peers        []bgp.PeerStatus `json:"peers"`
	// Announced are the prefixes announced now; VIPs are every VIP of
	// the services, announced or not, and OnLo the ones strata put on lo.
	Announced []string `json:"announced"`
	VIPs      []string `json:"vips"`
	OnLo      []string `json:"on_lo"`
	// The attributes of every route.
	MED           int64    `json:"med"`
	ASPathPrepend int      `json:"as_path_prepend"`
	Communities   []string `json:"communities"`
}

// BGPStatus returns the speaker's state; Enabled is false without
// l4.bgp.
func (s *Server) BGPStatus() BGPStatus {
	s.mu.Lock()
	a := s.bgp
	s.mu.Unlock()
	st := BGPStatus{Peers: []bgp.PeerStatus{}, Announced: []string{}, VIPs: []string{}, OnLo: []string{}, Communities: []string{}}
	if a == nil {
		return st
	}
	st.Enabled = true
	a.mu.Lock()
	st.ASN, st.RouterID = a.cfg.ASN, a.cfg.RouterID
	st.MED, st.ASPathPrepend = a.cfg.MED, a.cfg.ASPathPrepend
	st.Communities = append(st.Communities, a.cfg.Communities...)
	st.Drained, st.ShuttingDown = a.drained, a.draining
	if a.drained {
		at := a.drainedAt.UTC()
		st.DrainedAt = &at
	}
	for _, v := range a.vips {
		st.VIPs = append(st.VIPs, v.prefix.String())
	}
	a.mu.Unlock()
	st.Peers = append(st.Peers, a.speaker.Peers()...)
	for _, p := range a.speaker.Announced() {
		st.Announced = append(st.Announced, p.String())
	}
	for _, v := range a.lo.held() {
		st.OnLo = append(st.OnLo, v.String())
	}
	return st
}

// HandleBGP serves GET /api/v1/l4/bgp: the sessions, the prefixes
// announced now and whether the node is drained.
func (s *Server) HandleBGP(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.BGPStatus())
}

// HandleDrain serves POST /api/v1/l4/drain (on true) and
// /api/v1/l4/undrain: it answers with the state after the change. The
// admin listener guards it as every write.
func (s *Server) HandleDrain(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.DrainNode(on); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, "{\"error\": %q}\n", err.Error())
			return
		}
		action := "undrain-node"
		if on {
			action = "drain-node"
		}
		s.log.Info("admin write", "remote", r.RemoteAddr, "action", action)
		writeJSON(w, s.BGPStatus())
	}
}

// HandleServices serves GET /api/v1/l4/services.
func (s *Server) HandleServices(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.Services())
}

// HandleConns serves GET /api/v1/l4/conns[?limit=N].
func (s *Server) HandleConns(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "{\"error\": %q}\n", "limit must be a non-negative integer, got "+v)
			return
		}
		limit = n
	}
	conns := s.Conns(limit)
	if conns == nil {
		conns = []ConnStatus{}
	}
	writeJSON(w, conns)
}

// HandlePersistence serves GET /api/v1/l4/persistence.
func (s *Server) HandlePersistence(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.Persistence())
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}
