package supervisor

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/strata-lb/strata/internal/admin"
	"github.com/strata-lb/strata/internal/config"
)

// Chain implements admin.ChainSource: the hops of the running config in the
// order a request meets them (dns, l4, l7, then the app instances of pools
// that only follow the registry), then the registry beside them. The
// dashboard draws the chain from it.
func (s *Supervisor) Chain() []admin.Hop {
	g := s.gen.Load()
	if g == nil {
		return nil
	}
	b := s.boundAddrs()
	var hops []admin.Hop
	hops = append(hops, dnsHops(g.cfg.DNS, b.dns)...)
	l4 := l4Hops(g.cfg.L4, b.l4)
	l7 := l7Hops(g.cfg.L7, b.l7)
	if len(l7) == 0 {
		// With no l7 listener here, what an l4 service spreads TCP
		// connections over are the l7 nodes: other processes, whose own
		// pools hold the app instances.
		markBalancers(l4, g.cfg.Pools)
	}
	hops = append(hops, l4...)
	hops = append(hops, l7...)
	hops = append(hops, appHops(g.cfg.Pools, hops)...)
	markRegistry(hops, g.cfg.Pools)
	if rc := g.cfg.Registry; rc != nil {
		listen := rc.Listen
		if b.registry != "" {
			listen = b.registry
		}
		hops = append(hops, admin.Hop{Role: "registry", Name: listen, Listen: listen, Pools: []string{}})
	}
	return hops
}

// bound holds the addresses the roles actually listen on, which differ
// from the config when it asked for port 0. Empty fields mean the role does
// not run or cannot tell; the configured address serves then.
type bound struct {
	dns      []string
	l4       func(service string) []net.Addr
	l7       []net.Addr
	registry string
}

// boundAddrs asks the running roles for their addresses. The role set is
// read without the supervisor's lock (a reload holds it while it replaces
// the admin listener, which waits for this very request to finish).
func (s *Supervisor) boundAddrs() bound {
	var b bound
	l7r, _ := s.role("l7").(l7Role)
	l4r, _ := s.role("l4").(l4Role)
	dnsr, _ := s.role("dns").(dnsRole)
	regr, _ := s.role("registry").(registryRole)
	if l7r.Server != nil {
		b.l7 = l7r.Addrs()
	}
	if l4r.Server != nil {
		b.l4 = l4r.Addrs
	}
	if dnsr.Server != nil {
		b.dns = dnsr.Addrs()
		slices.Sort(b.dns)
	}
	if regr.Server != nil {
		if n := regr.Node(); n != nil {
			b.registry = n.ID()
		}
	}
	return b
}

func dnsHops(dc *config.DNS, bound []string) []admin.Hop {
	if dc == nil {
		return nil
	}
	listen := strings.Join(dc.Listen, ", ")
	if len(bound) > 0 {
		listen = strings.Join(bound, ", ")
	}
	hops := make([]admin.Hop, 0, len(dc.Zones))
	for _, z := range dc.Zones {
		h := admin.Hop{Role: "dns", Name: z.Name, Listen: listen, Pools: []string{}}
		for _, bn := range z.Balanced {
			h.Names = append(h.Names, bn.Name)
			h.Pools = addPool(h.Pools, bn.Pool)
			for _, gr := range bn.Groups {
				h.Pools = addPool(h.Pools, gr.Pool)
			}
			for _, v := range bn.Views {
				h.Pools = addPool(h.Pools, v.Pool)
				for _, gr := range v.Groups {
					h.Pools = addPool(h.Pools, gr.Pool)
				}
			}
		}
		hops = append(hops, h)
	}
	return hops
}

func l4Hops(lc *config.L4, bound func(string) []net.Addr) []admin.Hop {
	if lc == nil {
		return nil
	}
	hops := make([]admin.Hop, 0, len(lc.Services))
	for _, sc := range lc.Services {
		name := sc.Name
		if name == "" {
			name = sc.Protocol + "/" + sc.Listen
		}
		listen := sc.Listen
		if bound != nil {
			if as := bound(name); len(as) > 0 {
				listen = joinAddrs(as)
			}
		}
		hops = append(hops, admin.Hop{Role: "l4", Name: name, Listen: listen, Protocol: sc.Protocol, Pools: addPool([]string{}, sc.Pool)})
	}
	return hops
}

func l7Hops(lc *config.L7, bound []net.Addr) []admin.Hop {
	if lc == nil {
		return nil
	}
	hops := make([]admin.Hop, 0, len(lc.Listeners))
	for _, ls := range lc.Listeners {
		listen := ls.Listen
		// The l7 role reports its addresses without their listener, so a
		// bound address can be told apart only when there is one listener.
		if len(lc.Listeners) == 1 && len(bound) == 1 {
			listen = bound[0].String()
		}
		name := ls.Name
		if name == "" {
			name = ls.Listen
		}
		h := admin.Hop{Role: "l7", Name: name, Listen: listen, Pools: []string{}}
		for _, r := range ls.Routes {
			if r.Pool == "" && len(r.Split) == 0 {
				continue // a redirect or a fixed response
			}
			h.Names = append(h.Names, describeRoute(r))
			h.Pools = addPool(h.Pools, r.Pool)
			for _, sp := range r.Split {
				h.Pools = addPool(h.Pools, sp.Pool)
			}
		}
		hops = append(hops, h)
	}
	return hops
}

// markBalancers says of the tcp services among l4 that their backends are
// l7 nodes, with the admin address of each that names it in its tag
// "admin".
func markBalancers(l4 []admin.Hop, pools []config.Pool) {
	for i := range l4 {
		h := &l4[i]
		if h.Protocol != "tcp" {
			continue // a udp service's backends are not HTTP balancers
		}
		h.BackendRole = "l7"
		for _, p := range pools {
			if !slices.Contains(h.Pools, p.Name) {
				continue
			}
			for _, be := range p.Backends {
				a := be.Tags["admin"]
				if _, _, err := net.SplitHostPort(a); err != nil {
					continue // no admin address, or not one a link can use
				}
				name := be.Name
				if name == "" {
					name = be.Address
				}
				if h.Admin == nil {
					h.Admin = map[string]string{}
				}
				h.Admin[name] = a
			}
		}
	}
}

// appHops are the pools that follow a registry service and that no hop
// sends traffic to: the app instances as the registry sees them, which
// balancers in other processes (that follow the same service) send to.
func appHops(pools []config.Pool, hops []admin.Hop) []admin.Hop {
	var out []admin.Hop
	for _, p := range pools {
		if p.Registry == nil || slices.ContainsFunc(hops, func(h admin.Hop) bool { return slices.Contains(h.Pools, p.Name) }) {
			continue
		}
		out = append(out, admin.Hop{Role: "app", Name: p.Name, Pools: []string{p.Name}})
	}
	return out
}

// markRegistry names, on every hop, the registry service each of its
// pools follows.
func markRegistry(hops []admin.Hop, pools []config.Pool) {
	for _, p := range pools {
		r := p.Registry
		if r == nil {
			continue
		}
		for i := range hops {
			if !slices.Contains(hops[i].Pools, p.Name) {
				continue
			}
			if hops[i].Registry == nil {
				hops[i].Registry = map[string]string{}
			}
			hops[i].Registry[p.Name] = r.Namespace + "/" + r.Group + "/" + r.Service
		}
	}
}

// describeRoute says in a few characters which requests a route takes and
// where they go: "api.example.com/v1/ → api (+ canary)".
func describeRoute(r config.Route) string {
	var b strings.Builder
	b.WriteString(r.Host)
	switch {
	case r.Path != "":
		b.WriteString(r.Path)
	case r.PathRegex != "":
		fmt.Fprintf(&b, "~%s", r.PathRegex)
	case r.PathPrefix != "":
		b.WriteString(r.PathPrefix)
	default:
		b.WriteString("/")
	}
	if r.Pool != "" {
		fmt.Fprintf(&b, " → %s", r.Pool)
	}
	if len(r.Split) > 0 {
		names := make([]string, 0, len(r.Split))
		for _, sp := range r.Split {
			names = append(names, sp.Pool)
		}
		fmt.Fprintf(&b, " (+ %s)", strings.Join(names, ", "))
	}
	return b.String()
}

func addPool(pools []string, name string) []string {
	if name == "" || slices.Contains(pools, name) {
		return pools
	}
	return append(pools, name)
}

func joinAddrs(as []net.Addr) string {
	ss := make([]string, len(as))
	for i, a := range as {
		ss[i] = a.String()
	}
	return strings.Join(ss, ", ")
}
