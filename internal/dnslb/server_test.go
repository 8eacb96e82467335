package dnslb

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/strata-lb/strata/internal/config"
)

func TestReloadSwapsZonesKeepsListener(t *testing.T) {
	dc := baseConfig()
	s, addr := startServer(t, dc, nil)
	// Pin the port so the next config names the same address.
	dc2 := baseConfig()
	dc2.Listen = []string{addr}
	dc2.Zones[0].Records = []string{"static A 192.0.2.200"}
	dc.Listen = []string{addr}
	if err := s.Apply(dc, nil); err != nil {
		t.Fatal(err)
	}
	// A TCP connection opened before the reload keeps working after it.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tcpAsk := func() *dns.Msg {
		m := question("static.example.test.", dns.TypeA)
		b, _ := m.Pack()
		_, _ = c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got := answerIPs(tcpAsk()); len(got) != 2 {
		t.Fatalf("before reload: %v", got)
	}
	if err := s.Apply(dc2, nil); err != nil {
		t.Fatal(err)
	}
	if got := answerIPs(ask(t, "udp", addr, question("static.example.test.", dns.TypeA))); len(got) != 1 || got[0] != "192.0.2.200" {
		t.Errorf("after reload over UDP: %v, want the new record", got)
	}
	if got := answerIPs(tcpAsk()); len(got) != 1 || got[0] != "192.0.2.200" {
		t.Errorf("after reload on the old TCP connection: %v", got)
	}

	// A config that fails changes nothing.
	bad := baseConfig()
	bad.Listen = []string{addr}
	bad.Zones[0].File = "/nonexistent/zone"
	if err := s.Apply(bad, nil); err == nil {
		t.Fatal("Apply with a missing zone file succeeded")
	}
	if got := answerIPs(ask(t, "udp", addr, question("static.example.test.", dns.TypeA))); len(got) != 1 || got[0] != "192.0.2.200" {
		t.Errorf("after a failed reload: %v, want the config before it", got)
	}

	// Removing the section stops the listeners.
	if err := s.Apply(nil, nil); err != nil {
		t.Fatal(err)
	}
	cl := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	if _, _, err := cl.Exchange(question("static.example.test.", dns.TypeA), addr); err == nil {
		t.Error("still answering after the dns section was removed")
	}
}

func TestZoneFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/example.test.zone"
	zone := "$TTL 120\n@ IN SOA ns1 hostmaster 7 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.53\nfile IN A 192.0.2.10\n"
	if err := writeFile(path, zone); err != nil {
		t.Fatal(err)
	}
	dc := baseConfig()
	dc.Zones[0].Records = []string{"extra A 192.0.2.11"}
	dc.Zones[0].File = path
	_, addr := startServer(t, dc, nil)
	r := ask(t, "udp", addr, question("file.example.test.", dns.TypeA))
	if got := answerIPs(r); len(got) != 1 || got[0] != "192.0.2.10" || r.Answer[0].Header().Ttl != 120 {
		t.Errorf("record from the file: %v", r.Answer)
	}
	if got := answerIPs(ask(t, "udp", addr, question("extra.example.test.", dns.TypeA))); len(got) != 1 {
		t.Errorf("record from the config beside the file: %v", got)
	}

	tests := []struct{ desc, body, want string }{
		{desc: "syntax error names the file and line", body: "$TTL 60\nwww IN A not-an-ip\n", want: "example.test.zone"},
		{desc: "type without data", body: "www IN A\n", want: "no valid data"},
		{desc: "record outside the zone", body: "www.example.org. IN A 192.0.2.1\n", want: "outside the zone"},
		{desc: "CNAME beside other data", body: "a IN CNAME b\na IN TXT \"x\"\n", want: "CNAME and other records"},
		{desc: "include outside the zone's directory", body: "$INCLUDE /etc/passwd\n", want: "example.test"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if err := writeFile(path, tc.body); err != nil {
				t.Fatal(err)
			}
			_, err := buildTable(dc, nil, nil)
			if err == nil || !contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestRRL(t *testing.T) {
	slip := 2
	l := newRRL(&config.RRL{ResponsesPerSecond: 10, Burst: 5, Slip: &slip, IPv4Prefix: 24, IPv6Prefix: 56}, nil, nil)
	a := netip.MustParseAddr("192.0.2.1")
	sameNet := netip.MustParseAddr("192.0.2.200")
	other := netip.MustParseAddr("198.51.100.1")
	now := int64(1e9)
	for i := 0; i < 5; i++ {
		if v := l.check(a, now); v != rrlPass {
			t.Fatalf("response %d of the burst: %v, want pass", i, v)
		}
	}
	var drop, slipped int
	for i := 0; i < 10; i++ {
		switch l.check(sameNet, now) {
		case rrlDrop:
			drop++
		case rrlSlip:
			slipped++
		default:
			t.Fatal("the subnet's burst is spent, but a response passed")
		}
	}
	if drop != 5 || slipped != 5 {
		t.Errorf("over the limit: %d dropped, %d slipped; want every second one slipped", drop, slipped)
	}
	if l.dropped.Load() != 5 || l.slipped.Load() != 5 {
		t.Errorf("counters: %d dropped, %d slipped; want 5 and 5", l.dropped.Load(), l.slipped.Load())
	}
	if v := l.check(other, now); v != rrlPass {
		t.Errorf("another subnet was limited: %v", v)
	}
	// A tenth of a second refills one response at 10 per second.
	if v := l.check(a, now+100*int64(time.Millisecond)); v != rrlPass {
		t.Errorf("after the refill: %v, want pass", v)
	}
}

func TestRRLOverTheWire(t *testing.T) {
	dc := baseConfig()
	slip := 1
	dc.RRL = &config.RRL{ResponsesPerSecond: 1, Burst: 1, Slip: &slip, IPv4Prefix: 24, IPv6Prefix: 56}
	_, addr := startServer(t, dc, nil)
	first := ask(t, "udp", addr, question("static.example.test.", dns.TypeA))
	second := ask(t, "udp", addr, question("static.example.test.", dns.TypeA))
	if first.Truncated || len(first.Answer) != 2 {
		t.Errorf("first response limited: %v", first)
	}
	if !second.Truncated || len(second.Answer) != 0 {
		t.Errorf("second response: TC=%v answers %d, want a slipped (truncated, empty) reply", second.Truncated, len(second.Answer))
	}
	// TCP is never limited: a client told to retry there gets through.
	if r := ask(t, "tcp", addr, question("static.example.test.", dns.TypeA)); len(r.Answer) != 2 {
		t.Errorf("TCP answer %v", r.Answer)
	}
}

func TestTCPBounds(t *testing.T) {
	dc := baseConfig()
	dc.TCPMaxConns = 2
	dc.TCPIdleTimeout = config.Duration(200 * time.Millisecond)
	s, addr := startServer(t, dc, nil)
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// The server has accepted both before the third arrives.
	poll(t, 5*time.Second, "two TCP connections accepted", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		var n int64
		for _, l := range s.listeners {
			n += l.nconn.Load()
		}
		return n == 2
	})
	c3, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	_ = c3.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Error("a connection over tcp_max_conns was served")
	}
	// Idle connections are closed after tcp_idle_timeout.
	_ = conns[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	start := time.Now()
	if _, err := conns[0].Read(make([]byte, 1)); err == nil || time.Since(start) > 1500*time.Millisecond {
		t.Errorf("idle connection: err %v after %s, want closed by the server within the idle timeout", err, time.Since(start))
	}
}

// TestUDPReceiveBuffer: every UDP socket asks for a receive buffer of
// udpRecvBuffer, so a burst that arrives while its reader is off the CPU
// is queued, not dropped. As root (CI) SO_RCVBUFFORCE gets it whatever
// rmem_max says; otherwise the kernel caps it at rmem_max.
func TestUDPReceiveBuffer(t *testing.T) {
	s, _ := startServer(t, baseConfig(), nil)
	s.mu.Lock()
	var socks []*net.UDPConn
	for _, l := range s.listeners {
		socks = append(socks, l.udp...)
	}
	s.mu.Unlock()
	if len(socks) == 0 {
		t.Fatal("no UDP sockets")
	}
	for _, u := range socks {
		rc, err := u.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var gerr error
		rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
		if gerr != nil {
			t.Fatal(gerr)
		}
		// The kernel reports twice what was set (it counts its overhead).
		if os.Geteuid() == 0 && got < 2*udpRecvBuffer {
			t.Errorf("receive buffer %d bytes as root, want %d", got, 2*udpRecvBuffer)
		}
		if got <= 0 {
			t.Errorf("receive buffer %d", got)
		}
	}
}
