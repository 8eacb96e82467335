package l4

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// loLabel marks the IPv4 addresses strata puts on lo, so that a later
// run (after a crash left them there) knows them for its own. IPv6 has no
// labels: an IPv6 VIP found on lo at start is taken as the operator's.
const loLabel = "lo:strata"

// loAddrs keeps the VIPs on the lo interface (l4.bgp.vip_on_lo): the
// kernel accepts the packets the routers send to a VIP only when it is a
// local address. A VIP stays on lo for as long as the node serves it —
// while its routes are withdrawn for lack of healthy backends, while the
// node is drained and through the lameduck time — because taking it off
// would make the kernel drop the packets of flows the node still owes an
// answer to. Only addresses strata added are ever removed.
type loAddrs struct {
	log *slog.Logger

	mu    sync.Mutex
	added map[netip.Addr]bool // put there by strata
}

func newLoAddrs(log *slog.Logger) *loAddrs {
	return &loAddrs{log: log, added: map[netip.Addr]bool{}}
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// set makes want the VIPs strata holds on lo: the missing ones are added,
// and those strata added before and no longer wants are removed.
func (l *loAddrs) set(want []netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding lo: %w", err)
	}
	have, err := netlink.AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing the addresses of lo: %w", err)
	}
	on := map[netip.Addr]bool{}
	for _, a := range have {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		on[ip] = true
		if a.Label == loLabel {
			l.added[ip] = true
		}
	}
	keep := map[netip.Addr]bool{}
	var errs []error
	for _, a := range want {
		keep[a] = true
		if on[a] {
			continue
		}
		addr := &netlink.Addr{IPNet: hostNet(a)}
		if a.Is4() {
			addr.Label = loLabel
		} else {
			// Duplicate address detection would hold the address
			// tentative (unbindable) for a second or more; lo has no
			// neighbours to collide with.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(lo, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("putting %s on lo: %w", a, err))
			continue
		}
		l.added[a] = true
		l.log.Info("VIP put on lo", "vip", a.String())
	}
	for a := range l.added {
		if keep[a] {
			continue
		}
		if on[a] {
			if err := netlink.AddrDel(lo, &netlink.Addr{IPNet: hostNet(a)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("removing %s from lo: %w", a, err))
				continue
			}
			l.log.Info("VIP removed from lo", "vip", a.String())
		}
		delete(l.added, a)
	}
	return errors.Join(errs...)
}

// held returns the VIPs strata put on lo, sorted.
func (l *loAddrs) held() []netip.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]netip.Addr, 0, len(l.added))
	for a := range l.added {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
