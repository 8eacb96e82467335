package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// A port the kernel hands out for 127.0.0.1:0 lies in the ephemeral range,
// where every outgoing connection of every process on the machine also
// takes its source port: a test that reserves one that way, closes it and
// gives it to a child process to bind can find it taken by then (a demo
// that failed with "address already in use" on its DNS port). Ports below
// the ephemeral range are never chosen as source ports, so an address from
// FreeAddr stays free until something binds it on purpose; the counter keeps
// two calls in one test binary from choosing the same port.
var nextPort atomic.Uint32

func init() {
	nextPort.Store(rand.Uint32N(1 << 16))
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 12000 {
				return lo
			}
		}
	}
	return 32768
}

// FreeAddr returns a 127.0.0.1 address whose port is below the ephemeral
// range and free for TCP right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return freeAddr(t, false)
}

// FreeUDPTCPAddr is FreeAddr for a server that binds the port for both TCP
// and UDP (a DNS server).
func FreeUDPTCPAddr(t testing.TB) string {
	t.Helper()
	return freeAddr(t, true)
}

func freeAddr(t testing.TB, udp bool) string {
	t.Helper()
	const low = 10000
	span := uint32(ephemeralLow() - low)
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(low+int(nextPort.Add(1)%span)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		if udp {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				ln.Close()
				continue
			}
			pc.Close()
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// Bound reports whether a socket is bound to addr's port for network
// ("tcp": listening; "udp": bound) in this network namespace, read from
// /proc so that asking takes nothing from the process about to bind it. It
// tells that a child process given a FreeAddr has bound it, for UDP too,
// where no dial could.
func Bound(network, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", p)
	// thread-self, not /proc/net (which is /proc/self/net, the main
	// thread's namespace): Netns.Do may have moved the main thread into a
	// test's namespace for good, while every thread that runs goroutines
	// stays in this one.
	for _, f := range []string{"/proc/thread-self/net/" + network, "/proc/thread-self/net/" + network + "6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			// local_address is field 1 (hex ip:port), st field 3: 0A is
			// TCP_LISTEN; an unconnected UDP socket shows 07 (TCP_CLOSE).
			if len(fs) > 3 && strings.HasSuffix(fs[1], want) && (fs[3] == "0A" && network == "tcp" || fs[3] == "07" && network == "udp") {
				return true
			}
		}
	}
	return false
}
