package l4

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/testnet"
)

// TestLoAddrs: in a namespace of its own, the VIPs strata is told to hold
// go on lo (IPv4 with strata's label, IPv6 usable at once), and only
// those strata added come off again; an address an operator put there
// stays, and a labelled one a crashed run left is taken back.
func TestLoAddrs(t *testing.T) {
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	ns := testnet.NewNetns(t, "lo")
	ns.Run(t, "ip", "link", "set", "lo", "up")
	ns.Run(t, "ip", "addr", "add", "10.9.0.1/32", "dev", "lo")                       // the operator's
	ns.Run(t, "ip", "addr", "add", "10.9.0.9/32", "dev", "lo", "label", "lo:strata") // a crashed run's
	lo := newLoAddrs(slog.New(slog.DiscardHandler))
	set := func(addrs ...string) {
		t.Helper()
		var want []netip.Addr
		for _, a := range addrs {
			want = append(want, netip.MustParseAddr(a))
		}
		if err := ns.Do(func() error { return lo.set(want) }); err != nil {
			t.Fatal(err)
		}
	}
	show := func() string { return ns.Run(t, "ip", "-o", "addr", "show", "dev", "lo") }

	set("10.9.0.1", "10.9.0.2", "2001:db8::2")
	out := show()
	for _, want := range []string{"10.9.0.1/32", "10.9.0.2/32 scope global lo:strata", "2001:db8::2/128"} {
		if !strings.Contains(out, want) {
			t.Errorf("lo lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "10.9.0.9") {
		t.Errorf("the crashed run's VIP stayed on lo:\n%s", out)
	}
	if strings.Contains(out, "tentative") {
		t.Errorf("the IPv6 VIP is tentative (duplicate address detection ran):\n%s", out)
	}
	if got := lo.held(); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("10.9.0.2"), netip.MustParseAddr("2001:db8::2")}) {
		t.Errorf("held = %v, want the two strata added", got)
	}
	set()
	out = show()
	if strings.Contains(out, "10.9.0.2") || strings.Contains(out, "2001:db8::2") {
		t.Errorf("strata's VIPs stayed on lo:\n%s", out)
	}
	if !strings.Contains(out, "10.9.0.1/32") {
		t.Errorf("the operator's address was removed:\n%s", out)
	}
}
