package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// lockedBuffer collects a process's output from its own goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDNS runs strata with args and waits until addr answers over UDP.
func startDNS(t *testing.T, addr string, args ...string) *lockedBuffer {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(strataBin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("strata output:\n%s", out.String())
		}
	})
	eventually(t, 10*time.Second, "strata to listen on "+addr, func() bool {
		return strings.Contains(out.String(), "dns listening")
	})
	return out
}

// digRun runs dig (or kdig) against addr and returns its output.
func digRun(t *testing.T, tool, addr string, args ...string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	all := append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, args...)
	if tool == "kdig" {
		all = append([]string{"@" + host, "-p", port, "+time=2", "+retry=0"}, args...)
	}
	out, err := exec.Command(tool, all...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(all, " "), err, out)
	}
	return string(out)
}

// shortIPs runs dig +short and returns the sorted addresses.
func shortIPs(t *testing.T, addr, name string) []string {
	out := digRun(t, "dig", addr, "+short", name, "A")
	ips := strings.Fields(out)
	sort.Strings(ips)
	return ips
}

// listenOn binds host:port for TCP and accepts (and closes) every
// connection; it returns nil if the port is taken.
func listenOn(t *testing.T, hostport string) net.Listener {
	ln, err := net.Listen("tcp", hostport)
	if err != nil {
		return nil
	}
	go testnet.ServeClose(ln)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestDNSOneLinerFollowsHealth is the one-liner: two addresses
// checked over TCP. An address leaves the answers when its server stops
// listening and comes back when it returns; with every server down the
// answers fail open.
func TestDNSOneLinerFollowsHealth(t *testing.T) {
	testnet.NeedTool(t, "dig", "dnsutils")
	// Two backends on the same port of 127.0.0.2 and 127.0.0.3; the port
	// of 127.0.0.3 is held for the whole test, as its backend goes away
	// and returns.
	var b2 net.Listener
	var b3 *testnet.Held
	var port string
	for i := 0; i < 20 && b3 == nil; i++ {
		if b2 != nil {
			b2.Close()
		}
		// All of 127.0.0.0/8 is loopback on Linux: binding there fails
		// only on a broken machine.
		if b2 = listenOn(t, "127.0.0.2:0"); b2 == nil {
			t.Fatal("cannot bind 127.0.0.2")
		}
		_, port, _ = net.SplitHostPort(b2.Addr().String())
		b3 = testnet.TryHeld(t, "127.0.0.3", b2.Addr().(*net.TCPAddr).Port)
	}
	if b3 == nil {
		t.Fatal("no port free on both 127.0.0.2 and 127.0.0.3")
	}
	addr := freePort(t)
	out := startDNS(t, addr, "dns", "--listen", addr, "--zone", "example.test", "--a", "www=127.0.0.2,127.0.0.3", "--check", "tcp:"+port)

	both := "127.0.0.2 127.0.0.3"
	got := func() string { return strings.Join(shortIPs(t, addr, "www.example.test"), " ") }
	if g := got(); g != both {
		t.Fatalf("healthy: %q, want %q", g, both)
	}
	// interval 1s × fall 2: gone within a few seconds.
	b3.Stop()
	eventually(t, 8*time.Second, "127.0.0.3 to leave the answers", func() bool { return got() == "127.0.0.2" })
	b3.Start()
	eventually(t, 8*time.Second, "127.0.0.3 to come back", func() bool { return got() == both })
	// Every address down: fail open, answer them all.
	// Fail open answers like health does, so the health monitor's log is
	// the only way to tell that both have been found down.
	b2.Close()
	b3.Stop()
	eventually(t, 8*time.Second, "both addresses found down", func() bool {
		o := out.String()
		return strings.Count(o, "backend=127.0.0.3:"+port) >= 3 && strings.Contains(o, "backend=127.0.0.2:"+port)
	})
	if g := got(); g != both {
		t.Errorf("all down: %q, want every address (fail open)", g)
	}
}

const dnsZoneConfig = `admin:
  listen: "off"
pools:
  - name: web
    passive:
      max_fails: 0
    backends:
      - address: 192.0.2.1:80
        weight: 3
      - address: 192.0.2.2:80
        weight: 1
  - name: web-eu
    backends:
      - address: 198.51.100.7:80
dns:
  listen: ["%s"]
  tsig_keys:
    - name: xfr-key
      secret: c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==
  views:
    - name: eu
      subnets: [10.1.0.0/16]
  zones:
    - name: example.test
      records:
        - "@ NS ns1"
        - "ns1 A 192.0.2.53"
        - "static A 192.0.2.10"
        - "*.wild TXT \"wildcard\""
%s
      transfer:
        allow: [127.0.0.0/8]
        key: xfr-key
      balanced:
        - name: www
          ttl: 20s
          count: 1
          pool: web
          views:
            - view: eu
              pool: web-eu
`

func startZone(t *testing.T) string {
	t.Helper()
	addr := freePort(t)
	var big strings.Builder
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&big, "        - \"big TXT %s\"\n", strings.Repeat(string(rune('a'+i)), 200))
	}
	path := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(dnsZoneConfig, addr, strings.TrimRight(big.String(), "\n"))), 0o600); err != nil {
		t.Fatal(err)
	}
	startDNS(t, addr, "run", "-c", path)
	return addr
}

func TestDNSRcodesWithDigAndKdig(t *testing.T) {
	testnet.NeedTool(t, "dig", "dnsutils")
	testnet.NeedTool(t, "kdig", "knot-dnsutils")
	addr := startZone(t)
	tests := []struct {
		desc string
		tool string
		args []string
		want []string
	}{
		{desc: "NOERROR, authoritative, no recursion, case kept", tool: "dig", args: []string{"StAtIc.Example.TEST", "A"},
			want: []string{"status: NOERROR", "flags: qr aa rd;", "StAtIc.Example.TEST.\t3600\tIN\tA\t192.0.2.10"}},
		{desc: "NXDOMAIN with the SOA", tool: "dig", args: []string{"nope.example.test", "A"}, want: []string{"status: NXDOMAIN", "AUTHORITY: 1", "SOA"}},
		{desc: "NODATA with the SOA", tool: "kdig", args: []string{"static.example.test", "MX"}, want: []string{"status: NOERROR", "AUTHORITY: 1", "SOA"}},
		{desc: "REFUSED outside our zones", tool: "kdig", args: []string{"www.example.org", "A"}, want: []string{"status: REFUSED"}},
		{desc: "wildcard", tool: "kdig", args: []string{"any.wild.example.test", "TXT"}, want: []string{"status: NOERROR", `"wildcard"`}},
		{desc: "ANY is minimal", tool: "dig", args: []string{"static.example.test", "ANY"}, want: []string{"HINFO", "RFC8482"}},
		{desc: "NOTIMP for UPDATE", tool: "dig", args: []string{"+opcode=update", "example.test", "SOA"}, want: []string{"status: NOTIMP"}},
		{desc: "BADVERS for EDNS version 1", tool: "dig", args: []string{"+edns=1", "+noednsnegotiation", "static.example.test"}, want: []string{"status: BADVERS"}},
		{desc: "truncated over UDP, dig retries over TCP", tool: "dig", args: []string{"+noedns", "big.example.test", "TXT"},
			want: []string{"Truncated, retrying in TCP mode", "ANSWER: 6", "(TCP)"}},
		{desc: "kdig sees TC when told not to retry", tool: "kdig", args: []string{"+ignore", "+noedns", "big.example.test", "TXT"},
			want: []string{"Flags: qr aa tc", "ANSWER: 0;"}},
		{desc: "kdig over TCP gets it whole", tool: "kdig", args: []string{"+tcp", "big.example.test", "TXT"}, want: []string{"ANSWER: 6"}},
		{desc: "ECS in a view (dig)", tool: "dig", args: []string{"+subnet=10.1.2.0/24", "www.example.test"},
			want: []string{"198.51.100.7", "CLIENT-SUBNET: 10.1.2.0/24/16"}},
		{desc: "ECS in a view (kdig)", tool: "kdig", args: []string{"+subnet=10.1.2.0/24", "www.example.test"},
			want: []string{"198.51.100.7", "10.1.2.0/24/16"}},
		{desc: "ECS outside every view gets the default pool", tool: "kdig", args: []string{"+subnet=192.0.2.0/24", "www.example.test"},
			want: []string{"IN\tA\t192.0.2."}},
		{desc: "AXFR signed with the zone's key (kdig)", tool: "kdig", args: []string{"-y", "hmac-sha256:xfr-key:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==", "example.test", "AXFR"},
			want: []string{"static.example.test.", "ns1.example.test.", "TSIG\thmac-sha256."}},
		{desc: "AXFR signed with the zone's key (dig)", tool: "dig", args: []string{"-y", "hmac-sha256:xfr-key:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==", "example.test", "AXFR"},
			want: []string{"static.example.test.", "XFR size: "}},
		{desc: "AXFR unsigned is refused", tool: "dig", args: []string{"example.test", "AXFR"}, want: []string{"Transfer failed"}},
		{desc: "balanced TTL", tool: "dig", args: []string{"www.example.test"}, want: []string{"www.example.test.\t20\tIN\tA\t192.0.2."}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			out := digRun(t, tc.tool, addr, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s output lacks %q:\n%s", tc.tool, w, out)
				}
			}
		})
	}
}

// TestDNSWeightsOverManyQueries asks 2000 times in one dig batch: weights
// 3:1 with one address per answer.
func TestDNSWeightsOverManyQueries(t *testing.T) {
	testnet.NeedTool(t, "dig", "dnsutils")
	addr := startZone(t)
	const n = 2000
	batch := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batch, bytes.Repeat([]byte("www.example.test A +short\n"), n), 0o600); err != nil {
		t.Fatal(err)
	}
	out := digRun(t, "dig", addr, "-f", batch)
	counts := map[string]int{}
	for _, ip := range strings.Fields(out) {
		counts[ip]++
	}
	if counts["192.0.2.1"]+counts["192.0.2.2"] != n {
		t.Fatalf("answers %v, want %d in all", counts, n)
	}
	// Expected share 0.75; ±0.05 is over 5 standard deviations at n=2000.
	share := float64(counts["192.0.2.1"]) / n
	if share < 0.70 || share > 0.80 {
		t.Errorf("192.0.2.1 (weight 3 of 4) answered %.3f of the time, want 0.75±0.05 (%v)", share, counts)
	}
}
