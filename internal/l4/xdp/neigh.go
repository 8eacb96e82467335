package xdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// Resolver finds the MAC address the program must send a real's packets
// to: the real's own in DR mode, its next hop's in tunnel mode.
type Resolver interface {
	Resolve(real netip.Addr, mode Mode) (net.HardwareAddr, error)
}

// NeighResolver asks the kernel: the route to the real gives the next
// hop, and the neighbour table its MAC. When the table has no entry yet,
// a datagram to the discard port makes the kernel resolve one.
type NeighResolver struct {
	// Timeout bounds the wait for ARP or neighbour discovery; 1s when 0.
	Timeout time.Duration
}

// Resolve implements Resolver.
func (r NeighResolver) Resolve(real netip.Addr, mode Mode) (net.HardwareAddr, error) {
	routes, err := netlink.RouteGet(real.AsSlice())
	if err != nil {
		return nil, fmt.Errorf("route to %s: %w", real, err)
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("no route to %s", real)
	}
	rt := routes[0]
	hop := real
	if rt.Gw != nil {
		if mode == DR {
			return nil, fmt.Errorf("%s is reached through the gateway %s, but dr needs every real on the balancer's own segment (use tunnel)", real, rt.Gw)
		}
		hop, _ = netipFrom(rt.Gw)
	}
	if rt.Type == 2 /* RTN_LOCAL */ {
		return nil, fmt.Errorf("%s is an address of this host", real)
	}
	family := netlink.FAMILY_V4
	if hop.Is6() {
		family = netlink.FAMILY_V6
	}
	lookup := func() net.HardwareAddr {
		neighs, err := netlink.NeighList(rt.LinkIndex, family)
		if err != nil {
			return nil
		}
		for _, n := range neighs {
			ip, _ := netipFrom(n.IP)
			if ip != hop || len(n.HardwareAddr) != 6 {
				continue
			}
			if n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) != 0 {
				continue
			}
			return n.HardwareAddr
		}
		return nil
	}
	if mac := lookup(); mac != nil {
		return mac, nil
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	deadline := time.Now().Add(timeout)
	for next := time.Now(); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		// Prod the kernel again every 200ms: a first ARP request can be
		// lost, and the kernel retries only on its own schedule.
		if time.Now().After(next) {
			if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(hop, 9))); err == nil {
				c.Write([]byte{0})
				c.Close()
			}
			next = time.Now().Add(200 * time.Millisecond)
		}
		if mac := lookup(); mac != nil {
			return mac, nil
		}
	}
	return nil, errors.New("no neighbour entry for " + hop.String() + " (does it answer ARP / neighbour discovery?)")
}
