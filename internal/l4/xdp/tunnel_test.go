package xdp

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// tunNet is a routed tunnel-mode network: the client and the balancer on
// a front segment, the reals on a back segment behind a router, each real
// with the VIP on lo and strata decap on eth0 (this kernel has no ipip
// module). The balancer reaches the reals through the router; the reals
// answer the client through it too, never through the balancer.
type tunNet struct {
	client, lb, router *testnet.Netns
	reals              map[string]*testnet.Netns
	addrs              map[string]string
	addrs6             map[string]string
	decaps             map[string]*Decap
	dp                 *Dataplane
}

const (
	tunVIP  = "10.252.0.100"
	tunVIP6 = "fd00:252::100"
)

func newTunNet(t *testing.T) *tunNet {
	t.Helper()
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	front := testnet.NewBridge(t, "tf")
	back := testnet.NewBridge(t, "tb")
	n := &tunNet{reals: map[string]*testnet.Netns{}, addrs: map[string]string{}, addrs6: map[string]string{}, decaps: map[string]*Decap{}}
	n.router = testnet.NewNetns(t, "trt")
	front.Plug(t, n.router, "eth0")
	back.Plug(t, n.router, "eth1")
	n.router.AddAddrs(t, "eth0", "10.252.0.254/24", "fd00:252::fe/64")
	n.router.AddAddrs(t, "eth1", "10.252.1.254/24", "fd00:252:1::fe/64")
	n.router.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	n.client = front.Host(t, "tc", "eth0", "10.252.0.1/24", "fd00:252::1/64")
	n.client.Run(t, "ip", "route", "add", "fd00:252:1::/64", "via", "fd00:252::fe")
	n.lb = front.Host(t, "tlb", "eth0", "10.252.0.2/24", tunVIP+"/32", "fd00:252::2/64", tunVIP6+"/128")
	n.lb.Run(t, "ip", "route", "add", "10.252.1.0/24", "via", "10.252.0.254")
	n.lb.Run(t, "ip", "route", "add", "fd00:252:1::/64", "via", "fd00:252::fe")
	for i, name := range []string{"r1", "r2"} {
		ip := fmt.Sprintf("10.252.1.%d", 11+i)
		ns := back.Host(t, "t"+name, "eth0", ip+"/24", fmt.Sprintf("fd00:252:1::%x/64", 0x11+i))
		ns.AddAddrs(t, "lo", tunVIP+"/32", tunVIP6+"/128")
		ns.Run(t, "ip", "route", "add", "default", "via", "10.252.1.254")
		ns.Run(t, "ip", "route", "add", "default", "via", "fd00:252:1::fe")
		// The decapsulated packet arrives on eth0 for an address of lo;
		// loose reverse-path filtering accepts it.
		ns.Run(t, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0")
		serveReal(t, ns, name)
		var dc *Decap
		if err := ns.Do(func() (err error) {
			if dc, err = NewDecap(); err != nil {
				return err
			}
			_, err = dc.Attach("eth0", Generic)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dc.Close() })
		n.reals[name], n.addrs[name], n.decaps[name] = ns, ip, dc
		n.addrs6[name] = fmt.Sprintf("fd00:252:1::%x", 0x11+i)
	}
	if err := n.lb.Do(func() (err error) {
		if n.dp, err = New(Options{}); err != nil {
			return err
		}
		_, err = n.dp.Attach("eth0", Generic)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.dp.Close() })
	return n
}

func (n *tunNet) publish(t *testing.T, proto uint8, port int, names ...string) (ServiceKey, *upstream.Pool) {
	t.Helper()
	p := upstream.NewPool(fmt.Sprintf("t%d", port), upstream.Options{})
	t.Cleanup(p.Close)
	addrs, weights := map[string]string{}, map[string]int{}
	for _, name := range names {
		addrs[name] = fmt.Sprintf("%s:%d", n.addrs[name], port)
		weights[name] = 1
	}
	setPool(t, p, addrs, weights)
	key := ServiceKey{Addr: netipAddrPort(tunVIP, port), Proto: proto}
	if err := n.lb.Do(func() error { return n.dp.SetService(key, Tunnel, p.Snapshot()) }); err != nil {
		t.Fatal(err)
	}
	return key, p
}

// TestTunnel drives a tunnel-mode network with curl, echoed connections
// and dig against knotd, and checks both ends' counters.
func TestTunnel(t *testing.T) {
	curl := testnet.NeedTool(t, "curl", "curl")
	dig := testnet.NeedTool(t, "dig", "dnsutils")
	knotd := testnet.NeedTool(t, "knotd", "knot")
	n := newTunNet(t)
	webKey, _ := n.publish(t, unix.IPPROTO_TCP, httpPort, "r1", "r2")

	t.Run("curl", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 12; i++ {
			seen[n.client.Run(t, curl, "-sS", "--max-time", "5", "http://"+tunVIP+"/")]++
		}
		if seen["r1"] == 0 || seen["r2"] == 0 || len(seen) != 2 {
			t.Fatalf("answers through the tunnel: %v", seen)
		}
		const size = 2 << 20
		out, err := n.client.Cmd(curl, "-sS", "--max-time", "10", fmt.Sprintf("http://%s/blob?n=%d", tunVIP, size)).Output()
		if err != nil || string(out) != string(blob(size)) {
			t.Fatalf("a %d-byte download through the tunnel: %d bytes, %v", size, len(out), err)
		}
		st := n.dp.Stats()
		var total Counters
		for _, s := range st {
			if s.Key == webKey {
				total = s.Total
			}
		}
		if total.Flows < 13 || total.Bytes > size/10 {
			t.Fatalf("balancer counters %+v: want ≥13 flows and far fewer bytes than the %d downloaded", total, size)
		}
		// The client's last ACKs and FINs may still be on their way when
		// curl exits: wait for the reals to have decapsulated at least
		// every packet the balancer had tunnelled when it was read.
		waitFor(t, fmt.Sprintf("the reals to decapsulate the %d packets tunnelled", total.Packets), 5*time.Second, func() bool {
			var decapped uint64
			for _, d := range n.decaps {
				c, _ := d.Stats()
				decapped += c
			}
			return decapped >= total.Packets
		})
	})

	t.Run("echo byte for byte", func(t *testing.T) {
		n.publish(t, unix.IPPROTO_TCP, echoPort, "r1", "r2")
		for i := 0; i < 50; i++ {
			c, err := dialEcho(n.client, fmt.Sprintf("%s:%d", tunVIP, echoPort))
			if err != nil {
				t.Fatal(err)
			}
			payload := blob(1 + i*300)
			err = c.roundTrip(payload)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("ipv6 in ipv6", func(t *testing.T) {
		p := upstream.NewPool("t6", upstream.Options{})
		t.Cleanup(p.Close)
		setPool(t, p, map[string]string{
			"r1": net.JoinHostPort(n.addrs6["r1"], fmt.Sprint(httpPort)),
			"r2": net.JoinHostPort(n.addrs6["r2"], fmt.Sprint(httpPort)),
		}, map[string]int{"r1": 1, "r2": 1})
		key := ServiceKey{Addr: netipAddrPort(tunVIP6, httpPort), Proto: unix.IPPROTO_TCP}
		if err := n.lb.Do(func() error { return n.dp.SetService(key, Tunnel, p.Snapshot()) }); err != nil {
			t.Fatal(err)
		}
		if pend := n.dp.Pending(key); pend != 0 {
			t.Fatalf("%d reals without a next hop", pend)
		}
		seen := map[string]int{}
		for i := 0; i < 12; i++ {
			seen[n.client.Run(t, curl, "-sS", "--max-time", "5", "-g", "http://["+tunVIP6+"]/")]++
		}
		if seen["r1"] == 0 || seen["r2"] == 0 || len(seen) != 2 {
			t.Fatalf("answers through the IPv6 tunnel: %v", seen)
		}
	})

	t.Run("udp dig knotd", func(t *testing.T) {
		query := func(ns *testnet.Netns, server string) string {
			out, _ := ns.Cmd(dig, "@"+server, "who.example.test", "TXT", "+short", "+time=1", "+tries=1").Output()
			return strings.Trim(strings.TrimSpace(string(out)), `"`)
		}
		for name, ns := range n.reals {
			startKnot(t, knotd, ns, name, n.addrs[name])
			waitFor(t, "knotd in "+name, 10*time.Second, func() bool { return query(ns, n.addrs[name]) == name })
		}
		n.publish(t, unix.IPPROTO_UDP, 53, "r1", "r2")
		seen := map[string]int{}
		for i := 0; i < 20; i++ {
			answer := query(n.client, tunVIP)
			if n.reals[answer] == nil {
				t.Fatalf("dig through the VIP: %q", answer)
			}
			seen[answer]++
		}
		// Each dig asks from a fresh port, a flow of its own.
		if seen["r1"] == 0 || seen["r2"] == 0 {
			t.Fatalf("20 queries from fresh ports all went to one real: %v", seen)
		}
	})
}

// startKnot runs knotd in ns, answering who.example.test TXT with the
// real's name on the VIP and on the real's own address.
func startKnot(t *testing.T, knotd string, ns *testnet.Netns, name, addr string) {
	t.Helper()
	dir := t.TempDir()
	zone := fmt.Sprintf("$ORIGIN example.test.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A %s\nwho TXT \"%s\"\n", addr, name)
	conf := fmt.Sprintf("server:\n    rundir: %[1]q\n    listen: [ %[2]s@53, %[3]s@53 ]\ndatabase:\n    storage: %[1]q\ntemplate:\n  - id: default\n    storage: %[1]q\nzone:\n  - domain: example.test\n    file: example.test.zone\nlog:\n  - target: stderr\n    any: error\n", dir, tunVIP, addr)
	for f, body := range map[string]string{"example.test.zone": zone, "knot.conf": conf} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := ns.Cmd(knotd, "-c", filepath.Join(dir, "knot.conf"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("knotd %s:\n%s", name, out.String())
		}
	})
}
