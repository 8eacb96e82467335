package xdp

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// TestDRIPv6 runs DR over IPv6: the reals' MACs come from neighbour
// discovery, and the program parses IPv6 and matches an IPv6 VIP.
func TestDRIPv6(t *testing.T) {
	curl := testnet.NeedTool(t, "curl", "curl")
	n := newDRNet(t)
	p := upstream.NewPool("v6", upstream.Options{})
	t.Cleanup(p.Close)
	addrs, weights := map[string]string{}, map[string]int{}
	for _, name := range []string{"r1", "r2", "r3"} {
		addrs[name] = net.JoinHostPort(n.addrs6[name], fmt.Sprint(httpPort))
		weights[name] = 1
	}
	setPool(t, p, addrs, weights)
	key := ServiceKey{Addr: netipAddrPort(drVIP6, httpPort), Proto: unix.IPPROTO_TCP}
	if err := n.lb.Do(func() error { return n.dp.SetService(key, DR, p.Snapshot()) }); err != nil {
		t.Fatal(err)
	}
	if pend := n.dp.Pending(key); pend != 0 {
		t.Fatalf("%d reals without a MAC after neighbour discovery", pend)
	}
	seen := map[string]int{}
	for i := 0; i < 15; i++ {
		out := n.client.Run(t, curl, "-sS", "--max-time", "5", "-g", "http://["+drVIP6+"]/")
		if n.reals[out] == nil {
			t.Fatalf("curl over IPv6 got %q", out)
		}
		seen[out]++
	}
	if len(seen) < 2 {
		t.Fatalf("15 IPv6 connections all went to %v", seen)
	}
	st := n.stats(key)
	if st.Total.Flows < 15 {
		t.Fatalf("the balancer counted %d IPv6 flows for 15 connections", st.Total.Flows)
	}
	// A port of the VIP with no service is not the program's: it passes
	// to the balancer's own stack, which refuses the connection.
	_, err := dialEcho(n.client, net.JoinHostPort(drVIP6, fmt.Sprint(echoPort)))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a VIP port without a service: %v, want the balancer's stack to refuse it", err)
	}
}
