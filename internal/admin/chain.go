package admin

import "net/http"

// ChainSource is an optional interface of a Source that knows how its
// roles are wired: which listeners, services and names send traffic to
// which pools. The dashboard draws the chain from it; a Source without it
// gets an empty chain and the dashboard shows its pools alone.
type ChainSource interface {
	Chain() []Hop
}

// Hop is one stop of the chain a request travels: a DNS zone, an l4
// service, an l7 listener or the registry. It is the element of the body
// of GET /api/v1/chain.
type Hop struct {
	// Role is dns, l4, l7 or registry.
	Role string `json:"role"`
	// Name is the zone, service or listener name (the listen address when
	// the config gives none), or the registry node's address.
	Name string `json:"name"`
	// Listen is where the hop takes traffic: the bound address when the
	// role reports it (so a config that asked for port 0 shows the real
	// port), else the configured one. Several addresses are joined by ", ".
	Listen string `json:"listen"`
	// Protocol is tcp or udp for l4 services, empty otherwise.
	Protocol string `json:"protocol,omitempty"`
	// Names are what the hop serves besides its listen address: the
	// balanced names of a zone, or the route of each pool of an l7
	// listener ("/api/ → api").
	Names []string `json:"names,omitempty"`
	// Pools are the pools the hop sends traffic to, each once, in config
	// order; never null, so that clients can iterate without a check.
	Pools []string `json:"pools"`
}

func (s *Server) handleChain(w http.ResponseWriter, _ *http.Request) {
	hops := []Hop{}
	if cs, ok := s.opts.Source.(ChainSource); ok {
		for _, h := range cs.Chain() {
			if h.Pools == nil {
				h.Pools = []string{}
			}
			hops = append(hops, h)
		}
	}
	writeJSON(w, http.StatusOK, hops)
}
