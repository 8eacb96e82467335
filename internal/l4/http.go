package l4

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/strata-lb/strata/internal/l4/bgp"
)

// Endpoint paths of the l4 admin API.
const (
	PathServices    = "/api/v1/l4/services"
	PathConns       = "/api/v1/l4/conns"
	PathPersistence = "/api/v1/l4/persistence"
	PathBGP         = "/api/v1/l4/bgp"
)

// BGPStatus is the body of GET /api/v1/l4/bgp.
type BGPStatus struct {
	// Enabled is false when no config has set l4.bgp.
	Enabled   bool             `json:"enabled"`
	Peers     []bgp.PeerStatus `json:"peers"`
	Announced []string         `json:"announced"`
}

// HandleBGP serves GET /api/v1/l4/bgp: the sessions and the prefixes
// announced now.
func (s *Server) HandleBGP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	on := s.bgp != nil
	s.mu.Unlock()
	st := BGPStatus{Enabled: on, Peers: []bgp.PeerStatus{}, Announced: []string{}}
	if on {
		st.Peers = append(st.Peers, s.BGPPeers()...)
		for _, p := range s.BGPAnnounced() {
			st.Announced = append(st.Announced, p.String())
		}
	}
	writeJSON(w, st)
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
