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
// order a request meets them (dns, l4, l7), then the registry beside them.
// The dashboard draws the chain from it.
func (s *Supervisor) Chain() []admin.Hop {
	g := s.gen.Load()
	if g == nil {
		return nil
	}
	b := s.boundAddrs()
	var hops []admin.Hop
	hops = append(hops, dnsHops(g.cfg.DNS, b.dns)...)
	hops = append(hops, l4Hops(g.cfg.L4, b.l4)...)
	hops = append(hops, l7Hops(g.cfg.L7, b.l7)...)
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
