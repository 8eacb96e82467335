package xdp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// drNet is a DR test network: a client, a balancer and three real
// servers plugged into one bridge, the VIP on the balancer's eth0 (so it
// answers ARP for it) and on every real's lo (with arp_ignore=1 and
// arp_announce=2, so they don't).
type drNet struct {
	client, lb *testnet.Netns
	reals      map[string]*testnet.Netns
	addrs      map[string]string // real name → IP
	addrs6     map[string]string // real name → IPv6 address
	dp         *Dataplane
}

const (
	drVIP  = "10.250.0.100"
	drVIP6 = "fd00:250::100"
)

func newDRNet(t *testing.T) *drNet {
	t.Helper()
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	br := testnet.NewBridge(t, "sw")
	n := &drNet{reals: map[string]*testnet.Netns{}, addrs: map[string]string{}, addrs6: map[string]string{}}
	n.client = br.Host(t, "c", "eth0", "10.250.0.1/24", "fd00:250::1/64")
	n.lb = br.Host(t, "lb", "eth0", "10.250.0.2/24", drVIP+"/32", "fd00:250::2/64", drVIP6+"/128")
	for i, name := range []string{"r1", "r2", "r3"} {
		ip := fmt.Sprintf("10.250.0.%d", 11+i)
		ns := br.Host(t, name, "eth0", ip+"/24", fmt.Sprintf("fd00:250::%x/64", 0x11+i))
		// Linux answers neighbour solicitations only for addresses of
		// the interface asked, so a VIP on lo needs no sysctl in IPv6.
		ns.AddAddrs(t, "lo", drVIP+"/32", drVIP6+"/128")
		ns.Run(t, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
		serveReal(t, ns, name)
		n.reals[name] = ns
		n.addrs[name] = ip
		n.addrs6[name] = fmt.Sprintf("fd00:250::%x", 0x11+i)
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

// pool makes a pool of the named reals (name → weight) on port.
func (n *drNet) pool(t *testing.T, port int, weights map[string]int) *upstream.Pool {
	p := upstream.NewPool(fmt.Sprintf("p%d", port), upstream.Options{})
	t.Cleanup(p.Close)
	n.update(t, p, port, weights)
	return p
}

func (n *drNet) update(t *testing.T, p *upstream.Pool, port int, weights map[string]int) {
	addrs := map[string]string{}
	for name := range weights {
		addrs[name] = fmt.Sprintf("%s:%d", n.addrs[name], port)
	}
	setPool(t, p, addrs, weights)
}

// publish loads the pool's snapshot into the kernel for the VIP's port.
func (n *drNet) publish(t *testing.T, port int, mode Mode, p *upstream.Pool) ServiceKey {
	t.Helper()
	key := ServiceKey{Addr: netipAddrPort(drVIP, port), Proto: unix.IPPROTO_TCP}
	if err := n.lb.Do(func() error { return n.dp.SetService(key, mode, p.Snapshot()) }); err != nil {
		t.Fatal(err)
	}
	return key
}

func (n *drNet) stats(key ServiceKey) ServiceStats {
	for _, s := range n.dp.Stats() {
		if s.Key == key {
			return s
		}
	}
	return ServiceStats{}
}

// TestDR drives one DR network through the VIP with real clients and
// checks what the kernel did.
func TestDR(t *testing.T) {
	curl := testnet.NeedTool(t, "curl", "curl")
	iperf := testnet.NeedTool(t, "iperf3", "iperf3")
	n := newDRNet(t)
	web := n.pool(t, httpPort, map[string]int{"r1": 1, "r2": 1, "r3": 1})
	webKey := n.publish(t, httpPort, DR, web)

	t.Run("curl", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 12; i++ {
			out := n.client.Run(t, curl, "-sS", "--max-time", "5", "http://"+drVIP+"/")
			seen[out]++
		}
		for name := range seen {
			if n.reals[name] == nil {
				t.Fatalf("curl got %q, not a real's name", name)
			}
		}
		// A download: the reply, 4 MB, goes from the real to the client
		// directly, so the balancer counts only the request and ACKs.
		before := n.stats(webKey).Total
		const size = 4 << 20
		out, err := n.client.Cmd(curl, "-sS", "--max-time", "10", fmt.Sprintf("http://%s/blob?n=%d", drVIP, size)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(blob(size)) {
			t.Fatalf("downloaded %d bytes that differ from the real's", len(out))
		}
		after := n.stats(webKey).Total
		if after.Packets == before.Packets {
			t.Fatal("the balancer's counters did not see the download's request")
		}
		if got := after.Bytes - before.Bytes; got > size/10 {
			t.Fatalf("the balancer counted %d bytes for a %d-byte download: replies crossed it", got, size)
		}
	})

	t.Run("table", func(t *testing.T) {
		// The kernel's table is internal/balance's, slot for slot.
		got, err := n.dp.Table(webKey)
		if err != nil {
			t.Fatal(err)
		}
		ready, want := balance.MaglevTable(web.Snapshot().Ready, RingSize)
		if len(got) != len(want) {
			t.Fatalf("kernel table has %d slots, balance's %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != ready[want[i]].Name {
				t.Fatalf("slot %d: kernel %q, balance %q", i, got[i], ready[want[i]].Name)
			}
		}
	})

	t.Run("iperf3", func(t *testing.T) {
		// iperf3 opens a control and a data connection, which must reach
		// the same server: its VIP port has one real.
		srv := n.reals["r1"].Cmd(iperf, "-s", "-1", "-p", "5201")
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		p := n.pool(t, 5201, map[string]int{"r1": 1})
		key := n.publish(t, 5201, DR, p)
		var out []byte
		var err error
		waitFor(t, "iperf3 through the VIP", 10e9, func() bool {
			out, err = n.client.Cmd(iperf, "-c", drVIP, "-p", "5201", "-t", "1", "-J").CombinedOutput()
			return err == nil
		})
		if !strings.Contains(string(out), `"sum_received"`) {
			t.Fatalf("iperf3: %s", out)
		}
		if st := n.stats(key); st.Total.Flows < 2 {
			t.Fatalf("the balancer saw %d flows of iperf3, want its control and data connections", st.Total.Flows)
		}
	})

	echo := n.pool(t, echoPort, map[string]int{"r1": 1, "r2": 2, "r3": 3})
	echoKey := n.publish(t, echoPort, DR, echo)
	echoAddr := fmt.Sprintf("%s:%d", drVIP, echoPort)

	t.Run("400 connections by weight", func(t *testing.T) {
		const conns = 400
		var mu sync.Mutex
		per := map[string]int{}
		var wg sync.WaitGroup
		errc := make(chan error, conns)
		sem := make(chan struct{}, 8)
		for i := 0; i < conns; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := dialEcho(n.client, echoAddr)
				if err != nil {
					errc <- err
					return
				}
				defer c.Close()
				payload := make([]byte, 1+rand.IntN(16<<10))
				for j := range payload {
					payload[j] = byte(rand.Uint32())
				}
				if err := c.roundTrip(payload); err != nil {
					errc <- err
					return
				}
				mu.Lock()
				per[c.real]++
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		// Slots per real are in proportion to weight, exactly up to
		// Maglev's rounding; flows follow within binomial noise (5σ).
		table, err := n.dp.Table(echoKey)
		if err != nil {
			t.Fatal(err)
		}
		slots := map[string]int{}
		for _, name := range table {
			slots[name]++
		}
		for name, w := range map[string]int{"r1": 1, "r2": 2, "r3": 3} {
			share := float64(w) / 6
			if got := float64(slots[name]) / RingSize; math.Abs(got-share) > 0.01 {
				t.Errorf("%s has %.3f of the table, want %.3f", name, got, share)
			}
			sigma := math.Sqrt(conns * share * (1 - share))
			if got := float64(per[name]); math.Abs(got-conns*share) > 5*sigma {
				t.Errorf("%s took %v of %d connections, want %.0f ± %.0f", name, got, conns, conns*share, 5*sigma)
			}
		}
		st := n.stats(echoKey)
		if st.Total.Flows < conns {
			t.Errorf("the balancer counted %d new flows for %d connections", st.Total.Flows, conns)
		}
	})

	t.Run("failed backend leaves the table", func(t *testing.T) {
		var open []*echoConn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for i := 0; i < 30; i++ {
			c, err := dialEcho(n.client, echoAddr)
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, c)
		}
		// r2 fails its check: the core marks it down and the table is
		// rebuilt without it.
		if err := echo.SetHealthy("r2", false); err != nil {
			t.Fatal(err)
		}
		n.publish(t, echoPort, DR, echo)
		for _, c := range open {
			if c.real == "r2" {
				continue
			}
			if err := c.roundTrip([]byte("still there\n")); err != nil {
				t.Fatalf("an established connection through %s broke when r2 left: %v", c.real, err)
			}
		}
		for i := 0; i < 60; i++ {
			c, err := dialEcho(n.client, echoAddr)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if c.real == "r2" {
				t.Fatal("a new connection went to r2, which failed its check")
			}
		}
		echo.SetHealthy("r2", true)
		n.publish(t, echoPort, DR, echo)
	})

	t.Run("added backend keeps established flows", func(t *testing.T) {
		n.update(t, echo, echoPort, map[string]int{"r1": 1, "r2": 1})
		n.publish(t, echoPort, DR, echo)
		var open []*echoConn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for i := 0; i < 40; i++ {
			c, err := dialEcho(n.client, echoAddr)
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, c)
		}
		n.update(t, echo, echoPort, map[string]int{"r1": 1, "r2": 1, "r3": 4})
		n.publish(t, echoPort, DR, echo)
		// The new table sends most slots to r3, but every established
		// flow's packets find their real in the connection table: had
		// one moved, r3 would answer it with a reset.
		for _, c := range open {
			if err := c.roundTrip([]byte("same real\n")); err != nil {
				t.Fatalf("an established connection moved when r3 joined: %v", err)
			}
		}
		got := 0
		for i := 0; i < 30; i++ {
			c, err := dialEcho(n.client, echoAddr)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if c.real == "r3" {
				got++
			}
		}
		if got == 0 {
			t.Fatal("no new connection reached r3, which has two thirds of the table")
		}
		if len(n.dp.Flows(0)) == 0 {
			t.Fatal("the connection table is empty")
		}
	})
}

func netipAddrPort(ip string, port int) netip.AddrPort {
	return netip.MustParseAddrPort(net.JoinHostPort(ip, fmt.Sprint(port)))
}
