package supervisor

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/strata-lb/strata/internal/config"
)

// listeners returns every address this process listens on or is about to:
// the bound addresses of the admin listener, the registry's HTTP and Raft
// listeners and the l7, l4 and dns listeners, and the configured addresses
// of the generation in force and of the one being applied (a start or a
// reload starts following the registry before the roles bind). An
// unspecified IP stands for every address of the machine. Registry-fed
// pools never take an instance at one of these (discovery.Options.Self):
// an instance registered at the admin listener's address would otherwise
// let any client of the data plane drive the admin API through strata.
//
// It is called from the registry client's goroutines, so it reads only
// what is safe without the supervisor's lock.
func (s *Supervisor) listeners() []netip.AddrPort {
	var out []netip.AddrPort
	addBound := func(a net.Addr) {
		if a == nil {
			return
		}
		out = appendHostPort(out, a.String())
	}
	if a := s.adminAddr.Load(); a != nil {
		out = appendHostPort(out, *a)
	}
	b := s.boundAddrs()
	for _, a := range b.l7 {
		addBound(a)
	}
	for _, a := range b.dns {
		out = appendHostPort(out, a)
	}
	if regr, ok := s.role("registry").(registryRole); ok && regr.Server != nil {
		if n := regr.Node(); n != nil {
			addBound(n.Addr())
			out = appendHostPort(out, n.RaftAddr())
		}
	}
	cfgs := []*config.Config{s.applying.Load()}
	if g := s.gen.Load(); g != nil {
		cfgs = append(cfgs, g.cfg)
	}
	for _, c := range cfgs {
		if c == nil {
			continue
		}
		if c.Admin.Listen != "off" {
			out = appendHostPort(out, c.Admin.Listen)
		}
		if r := c.Registry; r != nil {
			out = appendHostPort(out, r.Listen)
			out = appendHostPort(out, r.RaftListen)
		}
		if c.L7 != nil {
			for _, l := range c.L7.Listeners {
				out = appendHostPort(out, l.Listen)
			}
		}
		if c.DNS != nil {
			for _, l := range c.DNS.Listen {
				out = appendHostPort(out, l)
			}
		}
		if c.L4 != nil {
			for _, sc := range c.L4.Services {
				out = appendHostPort(out, sc.Listen)
				if b.l4 != nil {
					for _, a := range b.l4(sc.Name) {
						addBound(a)
					}
				}
			}
		}
	}
	return out
}

// appendHostPort adds the addresses a listen address stands for: an IP
// and port, or every address (an unspecified IP) for an empty host, or
// both loopback addresses for localhost. A port range (l4's
// host:first-last) adds each port. Names other than localhost and port 0
// add nothing: the bound addresses cover them once the role listens.
func appendHostPort(out []netip.AddrPort, hostport string) []netip.AddrPort {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return out
	}
	first, last := port, port
	if i := strings.IndexByte(port, '-'); i > 0 {
		first, last = port[:i], port[i+1:]
	}
	lo, err1 := strconv.ParseUint(first, 10, 16)
	hi, err2 := strconv.ParseUint(last, 10, 16)
	if err1 != nil || err2 != nil || lo == 0 || hi < lo {
		return out
	}
	var ips []netip.Addr
	switch {
	case host == "":
		ips = []netip.Addr{netip.IPv6Unspecified()}
	case strings.EqualFold(host, "localhost"):
		ips = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	default:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return out
		}
		ips = []netip.Addr{a.Unmap().WithZone("")}
	}
	for p := lo; p <= hi; p++ {
		for _, a := range ips {
			out = append(out, netip.AddrPortFrom(a, uint16(p)))
		}
	}
	return out
}

// relayed reports whether peer is the local end of a connection that this
// process's l4 role opened to a backend: a write arriving from there was
// sent by a client of the data plane, not by an operator.
func (s *Supervisor) relayed(peer netip.AddrPort) bool {
	if l4 := s.L4(); l4 != nil {
		return l4.Relays(peer)
	}
	return false
}
