package sockopt

import (
	"context"
	"net"
	"net/netip"
)

// Listen is net.Listen with IP_FREEBIND (IPV6_FREEBIND) set: the socket
// may bind an address that no interface holds yet, and serves from the
// moment the address arrives. A keepalived (VRRP) pair moves a VIP to the
// node that takes over; with FREEBIND strata listens on it from the start
// on both nodes, so the new master serves as soon as keepalived adds the
// address, without a restart or a notify script (HAProxy's `freebind`
// bind option, nginx's `transparent`). ip_nonlocal_bind does the same for
// a whole namespace; this needs no sysctl. A typo in the address binds too,
// so callers log addresses that are not local (see Nonlocal).
func Listen(network, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: Freebind}
	return lc.Listen(context.Background(), network, addr)
}

// ListenPacket is net.ListenPacket with IP_FREEBIND, for the same reason.
func ListenPacket(network, addr string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: Freebind}
	return lc.ListenPacket(context.Background(), network, addr)
}

// Nonlocal reports whether addr (host:port) names a specific IP address
// that no interface of this network namespace holds now: a listener on it
// waits for the address (a VIP keepalived has not moved here yet, or a
// typo). It is false for wildcard and unparsable addresses, and when the
// interfaces cannot be read.
func Nonlocal(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr().IsUnspecified() {
		return false
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	want := ap.Addr().Unmap().WithZone("")
	for _, a := range ifaddrs {
		if p, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(p.IP); ok && ip.Unmap() == want {
				return false
			}
		}
	}
	return true
}
