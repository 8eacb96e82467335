package bgp

import (
	"context"
	"sort"

	api "github.com/osrg/gobgp/v3/api"
)

// PeerStatus is one session as the admin API and metrics show it.
type PeerStatus struct {
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	// State is the BGP FSM state: idle, connect, active, opensent,
	// openconfirm or established.
	State string `json:"state"`
}

var stateNames = map[api.PeerState_SessionState]string{
	api.PeerState_UNKNOWN:     "unknown",
	api.PeerState_IDLE:        "idle",
	api.PeerState_CONNECT:     "connect",
	api.PeerState_ACTIVE:      "active",
	api.PeerState_OPENSENT:    "opensent",
	api.PeerState_OPENCONFIRM: "openconfirm",
	api.PeerState_ESTABLISHED: "established",
}

// Peers returns the state of every session, by address.
func (s *Speaker) Peers() []PeerStatus {
	var out []PeerStatus
	err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		st := PeerStatus{Address: p.GetConf().GetNeighborAddress(), ASN: p.GetConf().GetPeerAsn(), State: "unknown"}
		if n, ok := stateNames[p.GetState().GetSessionState()]; ok {
			st.State = n
		}
		out = append(out, st)
	})
	if err != nil {
		s.log.Warn("listing peers", "err", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}
