package xdp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-lb/strata/internal/testnet"
)

// TestDRICMPFragNeeded sends the VIP an ICMP "fragmentation needed" about
// one of its flows, as a router on the way to the client would: the
// program forwards it to the real that holds the flow, and to no other.
func TestDRICMPFragNeeded(t *testing.T) {
	n := newDRNet(t)
	echo := n.pool(t, echoPort, map[string]int{"r1": 1, "r2": 1, "r3": 1})
	n.publish(t, echoPort, DR, echo)
	c, err := dialEcho(n.client, fmt.Sprintf("%s:%d", drVIP, echoPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := c.LocalAddr().(*net.TCPAddr).AddrPort()

	before := map[string]uint64{}
	for name, ns := range n.reals {
		before[name] = destUnreachs(t, ns)
	}
	// The error quotes the packet the real sent: VIP:7000 → client.
	inner := make([]byte, 28)
	inner[0], inner[8], inner[9] = 0x45, 64, unix.IPPROTO_TCP
	binary.BigEndian.PutUint16(inner[2:], 1500)
	vip := netip.MustParseAddr(drVIP).As4()
	cl := client.Addr().As4()
	copy(inner[12:], vip[:])
	copy(inner[16:], cl[:])
	binary.BigEndian.PutUint16(inner[20:], echoPort)
	binary.BigEndian.PutUint16(inner[22:], client.Port())
	msg := append([]byte{3, 4, 0, 0, 0, 0, 0x05, 0x00}, inner...) // next-hop MTU 1280
	binary.BigEndian.PutUint16(msg[2:], ^onesSum(msg))
	if err := n.client.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: vip})
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the error to reach "+c.real, 5*time.Second, func() bool {
		return destUnreachs(t, n.reals[c.real]) > before[c.real]
	})
	for name, ns := range n.reals {
		if name != c.real && destUnreachs(t, ns) != before[name] {
			t.Fatalf("the error about %s's flow also reached %s", c.real, name)
		}
	}
	if got := n.dp.Global()["icmp_forwarded"]; got != 1 {
		t.Fatalf("icmp_forwarded = %d, want 1", got)
	}
	// The flow itself goes on.
	if err := c.roundTrip([]byte("after the error\n")); err != nil {
		t.Fatal(err)
	}
}

// destUnreachs reads Icmp InDestUnreachs from a namespace's /proc/net/snmp.
func destUnreachs(t *testing.T, ns *testnet.Netns) uint64 {
	t.Helper()
	out := ns.Run(t, "cat", "/proc/net/snmp")
	sc := bufio.NewScanner(strings.NewReader(out))
	var head []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Icmp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "InDestUnreachs" && i < len(f) {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				return v
			}
		}
	}
	t.Fatal("no Icmp InDestUnreachs in /proc/net/snmp")
	return 0
}

// onesSum is the Internet checksum's one's-complement sum of b.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
