package dnslb

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzParseQuestion parses arbitrary messages with the hot path's own
// parser (parseHeader, parseQuestion) and with miekg/dns's Msg.Unpack, and
// whenever both accept a one-question message they must agree on the
// question's name (strata keeps it lower-cased), type and class, on
// whether there is an OPT record and on its payload size, version and DO
// bit, and on the Client Subnet option's family, source prefix and
// address.
//
// Where strata deliberately differs, the two are not compared: strata
// refuses a compression pointer in the question (a query has nothing to
// point back to), two OPT records or an OPT not owned by the root, and a
// Client Subnet option that breaks RFC 7871 §6 (scope not 0, address
// longer or shorter than the source prefix); it only skips answer and
// authority records, where Unpack parses each one's data and refuses
// what it cannot parse.
func FuzzParseQuestion(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, n := range []string{".", "www.example.test.", "WwW.ExAmPlE.TeSt.", `a\.b.example.`, `\000\255.x.`, "xn--bcher-kva.example."} {
		seed(question(n, dns.TypeA))
	}
	m := question("www.example.test.", dns.TypeAAAA)
	m.SetEdns0(1232, true)
	seed(m)
	m = question("www.example.test.", dns.TypeSRV)
	m.SetEdns0(4096, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(10, 1, 2, 0).To4()})
	seed(m)
	m = question("v6.example.test.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 2, SourceNetmask: 56, Address: net.ParseIP("2001:db8:1:2::")})
	seed(m)
	m = question("ns.example.test.", dns.TypeA)
	m.Ns = append(m.Ns, &dns.A{Hdr: dns.RR_Header{Name: "ns.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
	seed(m)

	f.Fuzz(func(t *testing.T, msg []byte) {
		var q query
		if q.parseHeader(msg) != nil || q.qdcnt != 1 || q.parseQuestion(msg) != nil {
			return
		}
		// What strata accepted is self-consistent.
		name := q.name()
		if len(name) == 0 || len(name) > maxNameLen || name[len(name)-1] != 0 || q.qend > len(msg) {
			t.Fatalf("accepted name %x (qend %d of %d)", name, q.qend, len(msg))
		}
		for i := 0; i <= q.nlabels; i++ {
			_ = q.suffix(i)
		}
		var ref dns.Msg
		if ref.Unpack(msg) != nil {
			return
		}
		if len(ref.Question) != 1 {
			t.Fatalf("Unpack found %d questions where strata found one", len(ref.Question))
		}
		rq := ref.Question[0]
		wire := make([]byte, 256)
		n, err := dns.PackDomainName(rq.Name, wire, 0, nil, false)
		if err != nil {
			t.Fatalf("repacking Unpack's name %q: %v", rq.Name, err)
		}
		if want := refLower(wire[:n]); !bytes.Equal(name, want) {
			t.Fatalf("name %x, Unpack's (lower-cased) %x (%q)", name, want, rq.Name)
		}
		if q.qtype != rq.Qtype || q.qclass != rq.Qclass {
			t.Fatalf("type %d class %d, Unpack's %d %d", q.qtype, q.qclass, rq.Qtype, rq.Qclass)
		}
		opt := ref.IsEdns0()
		if q.edns != (opt != nil) {
			t.Fatalf("EDNS %v, Unpack's OPT %v", q.edns, opt)
		}
		if opt == nil {
			return
		}
		if q.udpSize != opt.UDPSize() || uint32(q.version) != uint32(opt.Version()) || q.do != opt.Do() {
			t.Fatalf("OPT size %d version %d do %v, Unpack's %d %d %v", q.udpSize, q.version, q.do, opt.UDPSize(), opt.Version(), opt.Do())
		}
		var ecs *dns.EDNS0_SUBNET
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_SUBNET); ok && ecs == nil {
				ecs = e
			}
		}
		if !q.ecs {
			// Strata reads only the first Client Subnet option (a second
			// is refused), so an option Unpack found must have been seen.
			if ecs != nil {
				t.Fatalf("Unpack found a Client Subnet option strata did not: %v", ecs)
			}
			return
		}
		if ecs == nil {
			t.Fatalf("strata found a Client Subnet option Unpack did not")
		}
		if q.ecsFamily != ecs.Family || q.ecsSource != ecs.SourceNetmask {
			t.Fatalf("ECS family %d source %d, Unpack's %d %d", q.ecsFamily, q.ecsSource, ecs.Family, ecs.SourceNetmask)
		}
		var want netip.Addr
		if q.ecsFamily == 1 {
			want, _ = netip.AddrFromSlice(ecs.Address.To4())
		} else {
			want, _ = netip.AddrFromSlice(ecs.Address.To16())
		}
		if q.ecsAddr != want {
			t.Fatalf("ECS address %v, Unpack's %v", q.ecsAddr, ecs.Address)
		}
	})
}

// refLower lower-cases A-Z only, as DNS names compare (RFC 4343).
func refLower(b []byte) []byte {
	out := bytes.Clone(b)
	for i, c := range out {
		if 'A' <= c && c <= 'Z' {
			out[i] = c + 'a' - 'A'
		}
	}
	return out
}
