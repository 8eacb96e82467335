package dnslb

import (
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// offlineServer is a server with a table and no sockets, for fuzzing and
// benchmarks of the hot path alone.
func offlineServer(tb testing.TB, dc *config.DNS, pools map[string]*upstream.Pool) *Server {
	tb.Helper()
	s, err := NewServer(Options{Seed: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	t, err := buildTable(dc, pools, s.stats)
	if err != nil {
		tb.Fatal(err)
	}
	s.tab.Store(t)
	return s
}

func fuzzServer(t testing.TB) *Server {
	p := upstream.NewPool("web", upstream.Options{})
	_ = p.Update([]upstream.Spec{{Addr: "192.0.2.1:80", Weight: 2}, {Addr: "[2001:db8::1]:80", Weight: 1}, {Addr: "host.example.org:80", Weight: 1}})
	dc := lbConfig(config.Balanced{Pool: "web", Count: 1, Views: []config.BalancedView{{View: "v", Pool: "web"}}},
		config.DNSView{Name: "v", Subnets: []string{"10.0.0.0/8"}})
	slip := 2
	dc.RRL = &config.RRL{ResponsesPerSecond: 1000000, Burst: 1000000, Slip: &slip, IPv4Prefix: 24, IPv6Prefix: 56}
	return offlineServer(t, dc, map[string]*upstream.Pool{"web": p})
}

// FuzzHandle feeds arbitrary messages to the query handler: it must never
// panic, never answer a response, and every reply must be a well-formed
// DNS response with the query's ID.
func FuzzHandle(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"www.example.test.", dns.TypeA, true},
		{"WWW.example.test.", dns.TypeSRV, false},
		{"static.example.test.", dns.TypeAAAA, true},
		{"nope.example.test.", dns.TypeA, false},
		{"a.wild.example.test.", dns.TypeA, true},
		{"big.example.test.", dns.TypeTXT, false},
		{"example.org.", dns.TypeANY, true},
	} {
		m := question(q.name, q.qtype)
		if q.edns {
			m.SetEdns0(1232, true)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(10, 1, 2, 0).To4()})
		}
		b, _ := m.Pack()
		f.Add(b, true)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, false)
	s := fuzzServer(f)
	w := newWorker(0, 1)
	client := netip.MustParseAddrPort("127.0.0.1:5300")
	f.Fuzz(func(t *testing.T, msg []byte, udp bool) {
		resp := s.handle(w, msg, client, udp)
		if resp == nil {
			return
		}
		if len(msg) < headerLen || msg[2]&0x80 != 0 {
			t.Fatalf("answered %x, which is a runt or a response", msg)
		}
		if udp && len(resp) > 65535 {
			t.Fatalf("UDP reply of %d bytes", len(resp))
		}
		r := new(dns.Msg)
		if err := r.Unpack(resp); err != nil {
			t.Fatalf("reply does not unpack: %v\nquery %x\nreply %x", err, msg, resp)
		}
		if !r.Response || r.Id != binary.BigEndian.Uint16(msg) {
			t.Fatalf("reply QR=%v id=%d for query id %d", r.Response, r.Id, binary.BigEndian.Uint16(msg))
		}
	})
}

func benchQuery(b *testing.B, name string, qtype uint16, edns bool) {
	p := upstream.NewPool("web", upstream.Options{})
	_ = p.Update([]upstream.Spec{{Addr: "192.0.2.1:80", Weight: 3}, {Addr: "192.0.2.2:80", Weight: 2}, {Addr: "192.0.2.3:80", Weight: 1}})
	s := offlineServer(b, lbConfig(config.Balanced{Pool: "web", Count: 2}), map[string]*upstream.Pool{"web": p})
	m := question(name, qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	msg, _ := m.Pack()
	w := newWorker(0, 1)
	client := netip.MustParseAddrPort("127.0.0.1:5300")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.handle(w, msg, client, true) == nil {
			b.Fatal("no reply")
		}
	}
}

func BenchmarkHandleStatic(b *testing.B)     { benchQuery(b, "static.example.test.", dns.TypeA, false) }
func BenchmarkHandleStaticEDNS(b *testing.B) { benchQuery(b, "static.example.test.", dns.TypeA, true) }
func BenchmarkHandleNXDomain(b *testing.B)   { benchQuery(b, "nope.example.test.", dns.TypeA, true) }
func BenchmarkHandleBalanced(b *testing.B)   { benchQuery(b, "www.example.test.", dns.TypeA, true) }
func BenchmarkHandleBalancedSRV(b *testing.B) {
	benchQuery(b, "www.example.test.", dns.TypeSRV, true)
}
