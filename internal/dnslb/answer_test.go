package dnslb

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestStaticAnswers(t *testing.T) {
	_, addr := startServer(t, baseConfig(), nil)
	tests := []struct {
		desc   string
		name   string
		qtype  uint16
		rcode  int
		aa     bool
		answer []string // substrings expected in the answer section, in order
		auth   string   // substring expected in the authority section
		extra  string   // substring expected in the additional section
	}{
		{desc: "A set", name: "static.example.test.", qtype: dns.TypeA, aa: true, answer: []string{"192.0.2.1", "192.0.2.2"}},
		{desc: "case kept", name: "StAtIc.ExAmPlE.tEsT.", qtype: dns.TypeA, aa: true, answer: []string{"StAtIc.ExAmPlE.tEsT.\t3600\tIN\tA\t192.0.2.1"}},
		{desc: "AAAA", name: "static.example.test.", qtype: dns.TypeAAAA, aa: true, answer: []string{"2001:db8::1"}},
		{desc: "NODATA carries the SOA", name: "static.example.test.", qtype: dns.TypeMX, aa: true, auth: "SOA"},
		{desc: "NXDOMAIN carries the SOA with the negative TTL", name: "nope.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, auth: "300\tIN\tSOA"},
		{desc: "empty non-terminal is NODATA", name: "empty.nonterminal.example.test.", qtype: dns.TypeA, aa: true, auth: "SOA"},
		{desc: "name below an existing one is NXDOMAIN", name: "x.static.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, auth: "SOA"},
		{desc: "other zone is REFUSED", name: "www.example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{desc: "CNAME chased in zone", name: "alias.example.test.", qtype: dns.TypeA, aa: true, answer: []string{"CNAME\tstatic.example.test.", "static.example.test.\t3600\tIN\tA\t192.0.2.1"}},
		{desc: "CNAME chain chased", name: "chain.example.test.", qtype: dns.TypeA, aa: true, answer: []string{"CNAME\talias.example.test.", "CNAME\tstatic.example.test.", "192.0.2.1"}},
		{desc: "CNAME out of zone", name: "outside.example.test.", qtype: dns.TypeA, aa: true, answer: []string{"CNAME\twww.example.org."}},
		{desc: "CNAME asked for", name: "alias.example.test.", qtype: dns.TypeCNAME, aa: true, answer: []string{"CNAME\tstatic.example.test."}},
		{desc: "MX with glue", name: "example.test.", qtype: dns.TypeMX, aa: true, answer: []string{"MX\t10 mail.example.test."}, extra: "192.0.2.25"},
		{desc: "TXT", name: "txt.example.test.", qtype: dns.TypeTXT, aa: true, answer: []string{`"hello world"`}},
		{desc: "SRV with glue", name: "_sip._tcp.example.test.", qtype: dns.TypeSRV, aa: true, answer: []string{"SRV\t10 60 5060 sip.example.test."}, extra: "192.0.2.60"},
		{desc: "CAA", name: "example.test.", qtype: dns.TypeCAA, aa: true, answer: []string{`CAA	0 issue "letsencrypt.org"`}},
		{desc: "SOA", name: "example.test.", qtype: dns.TypeSOA, aa: true, answer: []string{"SOA\tns1.example.test. hostmaster.example.test. 2024010101"}},
		{desc: "NS with glue", name: "example.test.", qtype: dns.TypeNS, aa: true, answer: []string{"NS\tns1.example.test."}, extra: "192.0.2.53"},
		{desc: "wildcard", name: "Anything.Wild.example.test.", qtype: dns.TypeA, aa: true, answer: []string{"Anything.Wild.example.test.\t3600\tIN\tA\t192.0.2.77"}},
		{desc: "wildcard two labels deep", name: "a.b.wild.example.test.", qtype: dns.TypeA, aa: true, answer: []string{"a.b.wild.example.test.\t3600\tIN\tA\t192.0.2.77"}},
		{desc: "wildcard NODATA", name: "x.wild.example.test.", qtype: dns.TypeTXT, aa: true, auth: "SOA"},
		{desc: "ANY is minimal (RFC 8482)", name: "static.example.test.", qtype: dns.TypeANY, aa: true, answer: []string{"HINFO\t\"RFC8482\""}},
		{desc: "AXFR is refused", name: "example.test.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused, aa: true},
	}
	for _, tc := range tests {
		for _, netw := range []string{"udp", "tcp"} {
			t.Run(tc.desc+"/"+netw, func(t *testing.T) {
				m := question(tc.name, tc.qtype)
				m.SetEdns0(1232, false)
				r := ask(t, netw, addr, m)
				if r.Rcode != tc.rcode {
					t.Fatalf("rcode %s, want %s\n%s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode], r)
				}
				if r.Authoritative != tc.aa {
					t.Errorf("AA = %v, want %v", r.Authoritative, tc.aa)
				}
				if r.RecursionAvailable {
					t.Error("RA set; strata does no recursion")
				}
				if r.Question[0].Name != tc.name {
					t.Errorf("question %q, want the query's case %q", r.Question[0].Name, tc.name)
				}
				var an []string
				for _, rr := range r.Answer {
					an = append(an, rr.String())
				}
				if len(an) < len(tc.answer) {
					t.Fatalf("answer %q, want %q", an, tc.answer)
				}
				for i, w := range tc.answer {
					if !strings.Contains(an[i], w) {
						t.Errorf("answer[%d] = %q, want it to contain %q", i, an[i], w)
					}
				}
				if len(tc.answer) == 0 && len(an) > 0 {
					t.Errorf("answer %q, want none", an)
				}
				checkSection(t, "authority", r.Ns, tc.auth)
				if tc.extra != "" {
					checkSection(t, "additional", r.Extra, tc.extra)
				}
				if r.IsEdns0() == nil {
					t.Error("no OPT in the reply to an EDNS query")
				}
			})
		}
	}
}

func checkSection(t *testing.T, name string, rrs []dns.RR, want string) {
	t.Helper()
	if want == "" {
		if len(rrs) > 0 {
			t.Errorf("%s = %v, want empty", name, rrs)
		}
		return
	}
	for _, rr := range rrs {
		if strings.Contains(rr.String(), want) {
			return
		}
	}
	t.Errorf("%s = %v, want a record containing %q", name, rrs, want)
}

// raw sends raw bytes over UDP and returns the reply, or nil on timeout.
func raw(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestProtocolErrors(t *testing.T) {
	_, addr := startServer(t, baseConfig(), nil)
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	twoQ := question("static.example.test.", dns.TypeA)
	twoQ.Question = append(twoQ.Question, twoQ.Question[0])
	update := question("example.test.", dns.TypeSOA)
	update.Opcode = dns.OpcodeUpdate
	notify := question("example.test.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	ednsV1 := question("static.example.test.", dns.TypeA)
	ednsV1.SetEdns0(1232, false)
	ednsV1.IsEdns0().SetVersion(1)
	chaos := question("version.bind.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	resp := question("static.example.test.", dns.TypeA)
	resp.Response = true
	truncatedQ := pack(question("static.example.test.", dns.TypeA))
	truncatedQ = truncatedQ[:len(truncatedQ)-3]

	tests := []struct {
		desc    string
		msg     []byte
		noReply bool
		rcode   int
	}{
		{desc: "two questions", msg: pack(twoQ), rcode: dns.RcodeFormatError},
		{desc: "UPDATE is not implemented", msg: pack(update), rcode: dns.RcodeNotImplemented},
		{desc: "NOTIFY is not implemented", msg: pack(notify), rcode: dns.RcodeNotImplemented},
		{desc: "EDNS version 1 gets BADVERS", msg: pack(ednsV1), rcode: dns.RcodeBadVers},
		{desc: "class CHAOS is refused", msg: pack(chaos), rcode: dns.RcodeRefused},
		{desc: "cut question", msg: truncatedQ, rcode: dns.RcodeFormatError},
		{desc: "a response is not answered", msg: pack(resp), noReply: true},
		{desc: "a runt is not answered", msg: []byte{1, 2, 3}, noReply: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			b := raw(t, addr, tc.msg)
			if tc.noReply {
				if b != nil {
					t.Fatalf("got a reply %x, want none", b)
				}
				return
			}
			if b == nil {
				t.Fatal("no reply")
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatalf("unpacking reply: %v", err)
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if r.Id != binary.BigEndian.Uint16(tc.msg) {
				t.Errorf("id %d, want the query's", r.Id)
			}
		})
	}
}

func TestTruncationAndTCP(t *testing.T) {
	_, addr := startServer(t, baseConfig(), nil)
	tests := []struct {
		desc    string
		edns    uint16 // 0: no EDNS
		netw    string
		wantTC  bool
		wantAns int
	}{
		{desc: "no EDNS: 512 bytes, truncated", netw: "udp", wantTC: true},
		{desc: "EDNS 1232: still too big", edns: 1232, netw: "udp", wantTC: true},
		{desc: "EDNS 4096: capped at max_udp_size", edns: 4096, netw: "udp", wantTC: true},
		{desc: "TCP: the full answer", netw: "tcp", wantAns: 8},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			m := question("big.example.test.", dns.TypeTXT)
			if tc.edns > 0 {
				m.SetEdns0(tc.edns, false)
			}
			r := ask(t, tc.netw, addr, m)
			if r.Truncated != tc.wantTC || len(r.Answer) != tc.wantAns {
				t.Errorf("TC=%v with %d answers, want TC=%v with %d", r.Truncated, len(r.Answer), tc.wantTC, tc.wantAns)
			}
			if tc.edns > 0 && r.IsEdns0() == nil {
				t.Error("truncated reply lost its OPT record")
			}
		})
	}
	// A large buffer that fits the answer gets it whole over UDP.
	dc := baseConfig()
	dc.MaxUDPSize = 4096
	_, addr2 := startServer(t, dc, nil)
	m := question("big.example.test.", dns.TypeTXT)
	m.SetEdns0(4096, false)
	if r := ask(t, "udp", addr2, m); r.Truncated || len(r.Answer) != 8 {
		t.Errorf("max_udp_size 4096: TC=%v, %d answers; want the whole answer", r.Truncated, len(r.Answer))
	}
}
