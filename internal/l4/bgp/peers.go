package bgp

import (
	"context"
	"sort"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// PeerStatus is one session as the admin API and metrics show it.
type PeerStatus struct {
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	// State is the BGP FSM state: idle, connect, active, opensent,
	// openconfirm or established.
	State string `json:"state"`
	// Since is when the session entered State; zero before its first
	// transition.
	Since time.Time `json:"since,omitzero"`
	// UptimeSeconds is how long the session has been established, 0
	// when it is not.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Flaps counts the times the session fell from established.
	Flaps uint32 `json:"flaps"`
	// LastTransition is the session's last change of state.
	LastTransition *Transition `json:"last_transition,omitempty"`
}

// Transition is a change of a session's state, and why.
type Transition struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
	// Reason is GoBGP's reason for leaving established
	// (hold-timer-expired, notification-received …, read-failed), or
	// what the new state means.
	Reason string `json:"reason"`
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

// stateMeaning is the reason given for entering a state when GoBGP gave
// none.
var stateMeaning = map[string]string{
	"idle":        "session idle, waiting to connect again",
	"connect":     "connecting to the peer",
	"active":      "waiting to connect again",
	"opensent":    "TCP connected, OPEN sent",
	"openconfirm": "OPEN received, waiting for KEEPALIVE",
	"established": "session established",
}

// tracker follows each session's transitions from GoBGP's peer events,
// and the reasons GoBGP gives only in its log.
type tracker struct {
	mu       sync.Mutex
	peers    map[string]*peerTrack
	lastDown map[string]string // address → reason of its last fall from established
	now      func() time.Time
}

type peerTrack struct {
	asn   uint32
	state string
	since time.Time
	last  *Transition
}

func newTracker() *tracker {
	return &tracker{peers: map[string]*peerTrack{}, lastDown: map[string]string{}, now: time.Now}
}

func (t *tracker) add(addr string, asn uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peers[addr] = &peerTrack{asn: asn, state: "idle", since: t.now()}
}

func (t *tracker) forget(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.peers, addr)
	delete(t.lastDown, addr)
}

// down is called from the log adapter when GoBGP logs that a session
// left established; the state event that follows takes the reason.
func (t *tracker) down(addr, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastDown[addr] = reason
}

func (t *tracker) event(ev *api.WatchEventResponse) {
	pe := ev.GetPeer()
	if pe == nil || pe.GetType() != api.WatchEventResponse_PeerEvent_STATE {
		return
	}
	addr := pe.GetPeer().GetState().GetNeighborAddress()
	state, ok := stateNames[pe.GetPeer().GetState().GetSessionState()]
	if !ok {
		state = "unknown"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[addr]
	if p == nil || p.state == state {
		return
	}
	tr := &Transition{From: p.state, To: state, At: t.now(), Reason: stateMeaning[state]}
	if p.state == "established" {
		if r := t.lastDown[addr]; r != "" {
			tr.Reason = r
		}
		delete(t.lastDown, addr)
	}
	p.state, p.since, p.last = state, tr.At, tr
}

func (t *tracker) status(addr string, st *PeerStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[addr]
	if p == nil {
		return
	}
	st.Since = p.since
	if p.last != nil {
		tr := *p.last
		st.LastTransition = &tr
	}
	if st.State == "established" && p.state == "established" {
		st.UptimeSeconds = t.now().Sub(p.since).Truncate(time.Millisecond).Seconds()
	}
}

// Peers returns the state of every session, by address.
func (s *Speaker) Peers() []PeerStatus {
	var out []PeerStatus
	err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		st := PeerStatus{Address: p.GetConf().GetNeighborAddress(), ASN: p.GetConf().GetPeerAsn(), State: "unknown", Flaps: p.GetState().GetFlops()}
		if n, ok := stateNames[p.GetState().GetSessionState()]; ok {
			st.State = n
		}
		s.tracker.status(st.Address, &st)
		out = append(out, st)
	})
	if err != nil {
		s.log.Warn("listing peers", "err", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}
