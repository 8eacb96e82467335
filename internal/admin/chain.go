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
// service, an l7 listener, the app instances of a pool that follows the
// registry, or the registry. It is the element of the body of
// GET /api/v1/chain. Fields added later are left out when empty, so that
// older clients read the same body as before.
type Hop struct {
	// Role is dns, l4, l7, app or registry. An app hop is a pool that no
	// role of this process sends traffic to but that follows a registry
	// service: the instances as the registry sees them, which balancers in
	// other processes send to.
	Role string `json:"role"`
	// Name is the zone, service or listener name (the listen address when
	// the config gives none), the pool's name for an app hop, or the
	// registry node's address.
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
	// Registry maps each of the hop's pools that follows a registry
	// service to that service, "namespace/group/service".
	Registry map[string]string `json:"registry,omitempty"`
	// BackendRole is the role the backends of the hop's pools play when
	// they are balancers in other processes rather than app instances:
	// "l7" on an l4 service of a process that runs no l7 listener.
	BackendRole string `json:"backend_role,omitempty"`
	// Admin maps a backend of the hop's pools to the address of its own
	// admin API (and dashboard), for the backends that are balancers and
	// whose config names it with the tag "admin".
	Admin map[string]string `json:"admin,omitempty"`
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
