package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/strata-lb/strata/internal/config/known"
)

// L4 is the TCP/UDP load balancer role: LVS's virtual services, proxied in
// user space (FULLNAT-like), so the backends see strata's address unless a
// service sends them a PROXY protocol header.
type L4 struct {
	// Services are the virtual services; at least one is required.
	Services []L4Service `yaml:"services"`
	// XDP is where the in-kernel data plane of forward: dr and tunnel
	// services attaches; required when any service forwards in the kernel.
	XDP *L4XDP `yaml:"xdp"`
	// BGP announces the services' VIPs to routers; absent: no BGP.
	BGP *L4BGP `yaml:"bgp"`
}

// L4XDP places the XDP data plane (internal/l4/xdp).
type L4XDP struct {
	// Devices are the interfaces the XDP program attaches to: those the
	// VIPs' packets arrive on.
	Devices []string `yaml:"devices"`
	// Mode is auto, native or generic (default auto: native where the
	// driver has it, generic otherwise and on veth).
	Mode string `yaml:"mode"`
}

// L4Service is one virtual service: a protocol, an address with one port
// or a range of ports, a pool and a scheduler.
type L4Service struct {
	// Name identifies the service in logs, metrics and the admin API
	// (default: protocol/listen).
	Name string `yaml:"name"`
	// Protocol is tcp or udp (default tcp).
	Protocol string `yaml:"protocol"`
	// Listen is host:port or host:first-last for a range of ports.
	Listen string `yaml:"listen"`
	// Pool names the pool of real servers.
	Pool string `yaml:"pool"`
	// Forward is how packets reach the real servers: proxy (user space,
	// FULLNAT), dr (LVS direct routing, in the kernel) or tunnel (IP-in-IP,
	// in the kernel) (default proxy).
	Forward string `yaml:"forward"`
	// Scheduler is the LVS scheduler (default: the pool's lb).
	Scheduler string `yaml:"scheduler"`
	// MHFallback makes mh skip an overloaded backend to the next one of
	// the client's hash (LVS mh-fallback).
	MHFallback bool `yaml:"mh_fallback"`
	// MHPort hashes the client's port as well as its address (LVS
	// mh-port; also applies to sh).
	MHPort bool `yaml:"mh_port"`
	// Persistence sticks clients of one network to one backend; off when
	// absent.
	Persistence *L4Persistence `yaml:"persistence"`
	// ProxyProtocol sends a PROXY protocol header (v1 or v2) to backends
	// so they learn the client's address; empty sends none.
	ProxyProtocol string `yaml:"proxy_protocol"`
	// SorryServer takes new connections when no backend is available.
	SorryServer string `yaml:"sorry_server"`
	// MaxConns bounds the service's concurrent connections (0: no bound).
	MaxConns int `yaml:"max_conns"`
	// UpperThreshold is each backend's connection limit (LVS -x; 0: none).
	UpperThreshold int `yaml:"upper_threshold"`
	// LowerThreshold is where an overloaded backend takes new connections
	// again (LVS -y; default three quarters of upper_threshold).
	LowerThreshold int `yaml:"lower_threshold"`
	// AcceptRate bounds new connections per second from one client
	// address (0: no bound).
	AcceptRate int `yaml:"accept_rate"`
	// AcceptBurst is the burst allowed above accept_rate (default:
	// accept_rate).
	AcceptBurst int `yaml:"accept_burst"`
	// FirstByteTimeout drops TCP clients that send nothing for this long
	// after connecting (0s: off).
	FirstByteTimeout Duration `yaml:"first_byte_timeout"`
	// ConnectTimeout bounds connecting to a backend (default 5s).
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// Timeouts are the idle timeouts per protocol and state.
	Timeouts L4Timeouts `yaml:"timeouts"`
}

// L4Persistence is LVS's persistent service: -p timeout -M netmask.
type L4Persistence struct {
	// Timeout is how long a client network stays with its backend after
	// its last new connection (default 300s, as ipvsadm's -p).
	Timeout Duration `yaml:"timeout"`
	// Netmask is the IPv4 prefix length that groups clients (default 32).
	Netmask int `yaml:"netmask"`
	// Netmask6 is the IPv6 prefix length that groups clients (default 128).
	Netmask6 int `yaml:"netmask6"`
}

// L4Timeouts are the idle timeouts of connections and sessions.
type L4Timeouts struct {
	// TCP is the idle timeout of an established connection (default 900s).
	TCP Duration `yaml:"tcp"`
	// TCPFin is the idle timeout after one side closed (default 120s).
	TCPFin Duration `yaml:"tcp_fin"`
	// UDP is the idle timeout of a UDP session (default 300s).
	UDP Duration `yaml:"udp"`
}

// Defaults of the l4 section; LVS's own where LVS has one.
const (
	DefaultL4Protocol       = "tcp"
	DefaultL4Forward        = "proxy"
	DefaultL4XDPMode        = "auto"
	DefaultL4ConnectTimeout = Duration(5 * time.Second)
	DefaultL4TCPTimeout     = Duration(900 * time.Second)
	DefaultL4TCPFinTimeout  = Duration(120 * time.Second)
	DefaultL4UDPTimeout     = Duration(300 * time.Second)
	DefaultL4Persistence    = Duration(300 * time.Second)
	// DefaultL4UDPMaxSessions bounds a proxied UDP service's sessions,
	// and so the sockets it holds, as the kernel's nf_conntrack_max
	// (65536 on common hosts) bounds tracked flows.
	DefaultL4UDPMaxSessions = 65536
	// DefaultL4UDPSessionRate bounds new UDP sessions per second from one
	// client address. At 100/s one address opens at most 30,000 sessions
	// within the default 300s udp timeout, under half of the default
	// max_conns, so a single flooding source cannot fill the table that
	// every other client needs.
	DefaultL4UDPSessionRate = 100
	// MaxL4PortRange caps the ports of one service: each port is a socket
	// of its own in user space.
	MaxL4PortRange = 1024
)

// L4Schedulers are the schedulers the l4 role adds to the balance
// package's algorithms: LVS's locality-based, failover and overflow ones,
// and twos, LVS's name for power of two choices.
var L4Schedulers = []string{"lblc", "lblcr", "fo", "ovf", "twos"}

func init() {
	onDefaults(l4Defaults)
	onValidate(l4Validate)
}

func l4Defaults(c *Config, absent func(isZero bool, path string) bool) {
	if c.L4 == nil {
		return
	}
	if x := c.L4.XDP; x != nil && x.Mode == "" {
		x.Mode = DefaultL4XDPMode
	}
	for i := range c.L4.Services {
		s := &c.L4.Services[i]
		sp := fmt.Sprintf("l4.services[%d]", i)
		if s.Protocol == "" {
			s.Protocol = DefaultL4Protocol
		}
		if s.Name == "" {
			s.Name = s.Protocol + "/" + s.Listen
		}
		if s.Forward == "" {
			s.Forward = DefaultL4Forward
		}
		if absent(s.ConnectTimeout == 0, sp+".connect_timeout") {
			s.ConnectTimeout = DefaultL4ConnectTimeout
		}
		if s.Protocol == "udp" && s.Forward == "proxy" {
			// Every UDP session holds a socket (a file descriptor) to
			// its backend for timeouts.udp after its last datagram, and
			// a new source port is a new session: unbounded, a flood of
			// source ports would exhaust the process's descriptors.
			if absent(s.MaxConns == 0, sp+".max_conns") {
				s.MaxConns = DefaultL4UDPMaxSessions
			}
			if absent(s.AcceptRate == 0, sp+".accept_rate") {
				s.AcceptRate = DefaultL4UDPSessionRate
			}
		}
		if absent(s.AcceptBurst == 0, sp+".accept_burst") {
			s.AcceptBurst = s.AcceptRate
		}
		if absent(s.LowerThreshold == 0, sp+".lower_threshold") {
			s.LowerThreshold = s.UpperThreshold * 3 / 4
		}
		t := &s.Timeouts
		if absent(t.TCP == 0, sp+".timeouts.tcp") {
			t.TCP = DefaultL4TCPTimeout
		}
		if absent(t.TCPFin == 0, sp+".timeouts.tcp_fin") {
			t.TCPFin = DefaultL4TCPFinTimeout
		}
		if absent(t.UDP == 0, sp+".timeouts.udp") {
			t.UDP = DefaultL4UDPTimeout
		}
		if p := s.Persistence; p != nil {
			if absent(p.Timeout == 0, sp+".persistence.timeout") {
				p.Timeout = DefaultL4Persistence
			}
			if absent(p.Netmask == 0, sp+".persistence.netmask") {
				p.Netmask = 32
			}
			if absent(p.Netmask6 == 0, sp+".persistence.netmask6") {
				p.Netmask6 = 128
			}
		}
	}
}

// ParseL4Listen splits a service's listen address into its host and its
// first and last port; a single port gives first == last.
func ParseL4Listen(s string) (host string, first, last int, err error) {
	host, ports, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, 0, fmt.Errorf("%q is not host:port or host:first-last", s)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	if !isRange {
		hi = lo
	}
	if first, err = strconv.Atoi(lo); err != nil || first < 0 || first > 65535 {
		return "", 0, 0, fmt.Errorf("%q: port must be a number from 0 to 65535", s)
	}
	if last, err = strconv.Atoi(hi); err != nil || last < 1 && isRange || last > 65535 {
		return "", 0, 0, fmt.Errorf("%q: last port must be a number from 1 to 65535", s)
	}
	switch {
	case isRange && first == 0:
		return "", 0, 0, fmt.Errorf("%q: a port range cannot start at 0", s)
	case last < first:
		return "", 0, 0, fmt.Errorf("%q: the range ends before it starts", s)
	case last-first+1 > MaxL4PortRange:
		return "", 0, 0, fmt.Errorf("%q: %d ports, more than the %d a service may listen on", s, last-first+1, MaxL4PortRange)
	}
	return host, first, last, nil
}

func isL4Scheduler(name string) bool {
	for _, n := range L4Schedulers {
		if n == name {
			return true
		}
	}
	return known.Algorithm(name) == nil
}

func l4Validate(v *validator, pools map[string]bool) {
	l4 := v.c.L4
	if l4 == nil {
		return
	}
	if len(l4.Services) == 0 {
		v.errorf("l4.services", "l4 needs at least one service")
	}
	if x := l4.XDP; x != nil {
		switch x.Mode {
		case "auto", "native", "generic":
		default:
			v.errorf("l4.xdp.mode", "unknown XDP mode %q (want auto, native or generic)", x.Mode)
		}
		if len(x.Devices) == 0 {
			v.errorf("l4.xdp.devices", "at least one device is required")
		}
		for i, d := range x.Devices {
			if d == "" || len(d) > 15 || strings.ContainsAny(d, "/ ") {
				v.errorf(fmt.Sprintf("l4.xdp.devices[%d]", i), "%q is not an interface name", d)
			}
		}
	}
	names := map[string]string{}
	ports := map[string]string{} // protocol/host:port → path of the first user
	for i := range l4.Services {
		s := &l4.Services[i]
		sp := fmt.Sprintf("l4.services[%d]", i)
		if prev, dup := names[s.Name]; dup {
			v.errorf(sp+".name", "duplicate service name %q (first at line %d)", s.Name, v.line(prev))
		} else {
			names[s.Name] = sp + ".name"
		}
		if s.Protocol != "tcp" && s.Protocol != "udp" {
			v.errorf(sp+".protocol", "unknown protocol %q (want tcp or udp)", s.Protocol)
		}
		if s.Listen == "" {
			v.errorf(sp+".listen", "address is required (host:port or host:first-last)")
		} else if host, lo, hi, err := ParseL4Listen(s.Listen); err != nil {
			v.errorf(sp+".listen", "%v", err)
		} else {
			for p := lo; p <= hi && p != 0; p++ {
				k := s.Protocol + "/" + net.JoinHostPort(host, strconv.Itoa(p))
				if prev, dup := ports[k]; dup {
					v.errorf(sp+".listen", "%s port %d is already used by another service (line %d)", s.Protocol, p, v.line(prev))
					break
				}
				ports[k] = sp + ".listen"
			}
		}
		switch {
		case s.Pool == "":
			v.errorf(sp+".pool", "pool is required")
		case !pools[s.Pool]:
			v.errorf(sp+".pool", "no pool named %q (have %s)", s.Pool, poolList(pools))
		}
		switch s.Forward {
		case "proxy":
		case "dr", "tunnel":
			v.l4Kernel(sp, s)
		default:
			v.errorf(sp+".forward", "unknown forwarding mode %q (want proxy, dr or tunnel)", s.Forward)
		}
		if s.Scheduler != "" && !isL4Scheduler(s.Scheduler) {
			v.errorf(sp+".scheduler", "unknown scheduler %q (have %s, %s)", s.Scheduler, strings.Join(known.Algorithms(), ", "), strings.Join(L4Schedulers, ", "))
		}
		if p := s.Persistence; p != nil {
			if p.Timeout <= 0 {
				v.errorf(sp+".persistence.timeout", "must be positive, got %s", p.Timeout)
			}
			if p.Netmask < 1 || p.Netmask > 32 {
				v.errorf(sp+".persistence.netmask", "must be a prefix length from 1 to 32, got %d", p.Netmask)
			}
			if p.Netmask6 < 1 || p.Netmask6 > 128 {
				v.errorf(sp+".persistence.netmask6", "must be a prefix length from 1 to 128, got %d", p.Netmask6)
			}
		}
		switch s.ProxyProtocol {
		case "":
		case "v1", "v2":
			if s.Protocol == "udp" {
				v.errorf(sp+".proxy_protocol", "PROXY protocol is sent on tcp services only")
			}
		default:
			v.errorf(sp+".proxy_protocol", "unknown PROXY protocol version %q (want v1 or v2)", s.ProxyProtocol)
		}
		if s.SorryServer != "" {
			v.addr(sp+".sorry_server", s.SorryServer, true)
		}
		for _, f := range []struct {
			name string
			val  int
		}{{"max_conns", s.MaxConns}, {"upper_threshold", s.UpperThreshold}, {"lower_threshold", s.LowerThreshold}, {"accept_rate", s.AcceptRate}, {"accept_burst", s.AcceptBurst}} {
			if f.val < 0 {
				v.errorf(sp+"."+f.name, "must not be negative, got %d", f.val)
			}
		}
		if s.UpperThreshold > 0 && s.LowerThreshold >= s.UpperThreshold {
			v.errorf(sp+".lower_threshold", "%d must be less than upper_threshold (%d)", s.LowerThreshold, s.UpperThreshold)
		}
		if s.AcceptRate > 0 && s.AcceptBurst < 1 {
			v.errorf(sp+".accept_burst", "must be at least 1 when accept_rate is set, got %d", s.AcceptBurst)
		}
		if s.FirstByteTimeout < 0 {
			v.errorf(sp+".first_byte_timeout", "must not be negative, got %s", s.FirstByteTimeout)
		}
		if s.ConnectTimeout <= 0 {
			v.errorf(sp+".connect_timeout", "must be positive, got %s", s.ConnectTimeout)
		}
		for _, f := range []struct {
			name string
			val  Duration
		}{{"tcp", s.Timeouts.TCP}, {"tcp_fin", s.Timeouts.TCPFin}, {"udp", s.Timeouts.UDP}} {
			if f.val <= 0 {
				v.errorf(sp+".timeouts."+f.name, "must be positive, got %s", f.val)
			}
		}
	}
}

// l4Kernel checks a service that forwards in the kernel (dr or tunnel):
// the XDP program matches one literal address and port, cannot change the
// port on the way, and does none of the proxy's per-connection work.
func (v *validator) l4Kernel(sp string, s *L4Service) {
	if v.c.L4.XDP == nil {
		v.errorf(sp+".forward", "forward %s runs in the kernel: l4.xdp.devices must name the interfaces to attach to", s.Forward)
	}
	host, lo, hi, err := ParseL4Listen(s.Listen)
	if err == nil {
		ip := net.ParseIP(host)
		switch {
		case ip == nil || ip.IsUnspecified():
			v.errorf(sp+".listen", "forward %s needs the VIP as a literal IP address, got %q", s.Forward, host)
		case lo != hi || lo == 0:
			v.errorf(sp+".listen", "forward %s needs one port (not a range, not 0), got %q", s.Forward, s.Listen)
		}
	}
	if s.Scheduler != "" && s.Scheduler != "mh" && s.Scheduler != "maglev" {
		v.errorf(sp+".scheduler", "forward %s always schedules by Maglev in the kernel; leave scheduler out or set mh", s.Forward)
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"persistence", s.Persistence != nil}, {"proxy_protocol", s.ProxyProtocol != ""}, {"sorry_server", s.SorryServer != ""},
		{"max_conns", s.MaxConns != 0}, {"upper_threshold", s.UpperThreshold != 0}, {"accept_rate", s.AcceptRate != 0},
		{"first_byte_timeout", s.FirstByteTimeout != 0}, {"mh_fallback", s.MHFallback}, {"mh_port", s.MHPort},
	} {
		if f.set {
			v.errorf(sp+"."+f.name, "forward %s holds no connection state, so %s is a forward: proxy option", s.Forward, f.name)
		}
	}
	for i := range v.c.Pools {
		p := &v.c.Pools[i]
		if p.Name != s.Pool || err != nil {
			continue
		}
		for j, b := range p.Backends {
			h, port, err := net.SplitHostPort(b.Address)
			if err != nil {
				continue // the pool's own checks report it
			}
			bp := fmt.Sprintf("pools[%d].backends[%d].address", i, j)
			if net.ParseIP(h) == nil {
				v.errorf(bp, "service %s forwards %s, so its backends must be IP addresses, got %q", s.Name, s.Forward, h)
			}
			if port != strconv.Itoa(lo) {
				v.errorf(bp, "service %s forwards %s, which cannot change the port: the backend must listen on %d, got %s", s.Name, s.Forward, lo, port)
			}
		}
	}
}
