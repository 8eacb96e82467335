package dnslb

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/regapi"
	"github.com/strata-lb/strata/internal/registry"
)

// nodeSrc is a registry node as the DNS role reads it, through the
// adapter the supervisor uses.
type nodeSrc = registry.Source

// startRegistry starts a single-node, in-memory registry on loopback.
func startRegistry(t testing.TB) *registry.Node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := registry.Start(ln, registry.Options{RaftAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	deadline := time.Now().Add(10 * time.Second)
	for !n.Serving() {
		if time.Now().After(deadline) {
			t.Fatal("registry: no leader after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

func propose(t testing.TB, n *registry.Node, c *registry.Command) {
	t.Helper()
	if _, err := n.Propose(c); err != nil {
		t.Fatalf("%s %s: %v", c.Op, c.Key, err)
	}
}

func register(t testing.TB, n *registry.Node, k registry.Key, ins ...registry.Instance) {
	t.Helper()
	for i := range ins {
		if ins[i].Weight == 0 {
			ins[i].Weight = 1
		}
		ins[i].Healthy, ins[i].Enabled, ins[i].Ephemeral = true, true, true
	}
	propose(t, n, &registry.Command{Op: registry.OpRegister, Key: k, Instances: ins})
}

// registryDNS is a dns section with dns.registry under strata.test.
func registryDNS(mod func(*config.DNS)) *config.DNS {
	c := &config.Config{DNS: &config.DNS{
		Listen:     []string{"127.0.0.1:0"},
		UDPSockets: 1,
		Registry:   &config.DNSRegistry{Domain: "strata.test"},
	}}
	if mod != nil {
		mod(c.DNS)
	}
	c.ApplyDefaults()
	return c.DNS
}

// startRegistryServer serves dc with the registry get returns.
func startRegistryServer(t *testing.T, dc *config.DNS, get func() ServiceSource) (*Server, string) {
	t.Helper()
	s, err := NewServer(Options{Seed: 1, Logger: slog.New(slog.DiscardHandler), Services: get})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(dc, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s, s.Addrs()[0]
}

var (
	orders = registry.Key{Namespace: "public", Group: "DEFAULT_GROUP", Service: "orders"}
	pay    = registry.Key{Namespace: "public", Group: "billing", Service: "com.example.Pay"}
	secret = registry.Key{Namespace: "prod", Group: "DEFAULT_GROUP", Service: "orders"}
)

const ordersName = "orders.default_group.public.svc.strata.test."

func sortedIPs(r *dns.Msg) []string {
	ips := answerIPs(r)
	sort.Strings(ips)
	return ips
}

func TestRegistryAnswers(t *testing.T) {
	n := startRegistry(t)
	register(t, n, orders,
		registry.Instance{IP: "127.0.0.5", Port: 8080, Weight: 1},
		registry.Instance{IP: "127.0.0.6", Port: 8080, Weight: 3},
		registry.Instance{IP: "127.0.0.6", Port: 8081, Weight: 1},
		registry.Instance{IP: "::1", Port: 9000, Weight: 2},
		registry.Instance{IP: "127.0.0.9", Port: 8080},
		registry.Instance{IP: "127.0.0.10", Port: 8080},
	)
	propose(t, n, &registry.Command{Op: registry.OpSetHealth, Key: orders, IDs: []string{"127.0.0.10#8080#DEFAULT"}, Healthy: false})
	off := false
	propose(t, n, &registry.Command{Op: registry.OpPatch, Key: orders, IDs: []string{"127.0.0.9#8080#DEFAULT"}, Patch: &registry.Patch{Enabled: &off}})
	register(t, n, pay, registry.Instance{IP: "127.0.0.7", Port: 443})
	register(t, n, secret, registry.Instance{IP: "127.0.0.8", Port: 80})
	propose(t, n, &registry.Command{Op: registry.OpPutService, Service: &registry.Service{Key: registry.Key{Namespace: "public", Group: "DEFAULT_GROUP", Service: "empty"}}})
	_, addr := startRegistryServer(t, registryDNS(nil), func() ServiceSource { return nodeSrc{Node: n} })

	soa := func(r *dns.Msg) string {
		if len(r.Ns) != 1 {
			return ""
		}
		if s, ok := r.Ns[0].(*dns.SOA); ok {
			return s.Hdr.Name
		}
		return ""
	}
	tests := []struct {
		desc   string
		name   string
		qtype  uint16
		rcode  int
		ips    []string // A/AAAA answers, sorted; nil: none expected
		srv    int      // SRV records expected
		soa    bool     // SOA in authority
		verify func(t *testing.T, r *dns.Msg)
	}{
		{desc: "A: healthy, enabled instances, one per IP", name: ordersName, qtype: dns.TypeA, ips: []string{"127.0.0.5", "127.0.0.6"}},
		{desc: "AAAA", name: ordersName, qtype: dns.TypeAAAA, ips: []string{"::1"}},
		{desc: "SRV: one per instance with glue", name: ordersName, qtype: dns.TypeSRV, srv: 4, verify: func(t *testing.T, r *dns.Msg) {
			want := map[string]bool{
				"0 100 8080 ip-127-0-0-5." + ordersName:                         true,
				"0 300 8080 ip-127-0-0-6." + ordersName:                         true,
				"0 100 8081 ip-127-0-0-6." + ordersName:                         true,
				"0 200 9000 ip6-00000000000000000000000000000001." + ordersName: true,
			}
			for _, rr := range r.Answer {
				s := rr.(*dns.SRV)
				k := strings.Join([]string{itoa(s.Priority), itoa(s.Weight), itoa(s.Port), s.Target}, " ")
				if !want[k] {
					t.Errorf("unexpected SRV %s", rr)
				}
				delete(want, k)
			}
			if len(want) > 0 {
				t.Errorf("missing SRV %v", want)
			}
			glue := map[string]string{}
			for _, rr := range r.Extra {
				switch g := rr.(type) {
				case *dns.A:
					glue[g.Hdr.Name] = g.A.String()
				case *dns.AAAA:
					glue[g.Hdr.Name] = g.AAAA.String()
				}
			}
			if glue["ip-127-0-0-5."+ordersName] != "127.0.0.5" || glue["ip-127-0-0-6."+ordersName] != "127.0.0.6" ||
				glue["ip6-00000000000000000000000000000001."+ordersName] != "::1" || len(glue) != 3 {
				t.Errorf("glue = %v", glue)
			}
		}},
		{desc: "an SRV target resolves", name: "ip-127-0-0-6." + ordersName, qtype: dns.TypeA, ips: []string{"127.0.0.6"}},
		{desc: "case kept, matched case-insensitively", name: "ORDERS.Default_Group.PUBLIC.svc.Strata.TEST.", qtype: dns.TypeA, ips: []string{"127.0.0.5", "127.0.0.6"},
			verify: func(t *testing.T, r *dns.Msg) {
				if r.Answer[0].Header().Name != "ORDERS.Default_Group.PUBLIC.svc.Strata.TEST." {
					t.Errorf("owner %q, want the question's spelling", r.Answer[0].Header().Name)
				}
			}},
		{desc: "a service name with dots", name: "com.example.pay.billing.public.svc.strata.test.", qtype: dns.TypeA, ips: []string{"127.0.0.7"}},
		{desc: "other type: NODATA", name: ordersName, qtype: dns.TypeTXT, soa: true},
		{desc: "a service without instances: NODATA", name: "empty.default_group.public.svc.strata.test.", qtype: dns.TypeA, soa: true},
		{desc: "unknown service: NXDOMAIN", name: "nope.default_group.public.svc.strata.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{desc: "unknown group: NXDOMAIN", name: "orders.nope.public.svc.strata.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{desc: "a namespace not listed: NXDOMAIN", name: "orders.default_group.prod.svc.strata.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{desc: "below a service: NXDOMAIN", name: "x." + ordersName, qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{desc: "group: empty non-terminal", name: "default_group.public.svc.strata.test.", qtype: dns.TypeA, soa: true},
		{desc: "namespace: empty non-terminal", name: "public.svc.strata.test.", qtype: dns.TypeA, soa: true},
		{desc: "svc: empty non-terminal", name: "svc.strata.test.", qtype: dns.TypeA, soa: true},
		{desc: "synthesised SOA", name: "strata.test.", qtype: dns.TypeSOA, verify: func(t *testing.T, r *dns.Msg) {
			if len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Minttl != 5 {
				t.Errorf("SOA answer %v, want one with minimum 5 (the ttl)", r.Answer)
			}
		}},
		{desc: "synthesised NS with the listen address", name: "strata.test.", qtype: dns.TypeNS, verify: func(t *testing.T, r *dns.Msg) {
			if len(r.Answer) != 1 || r.Answer[0].(*dns.NS).Ns != "ns.strata.test." {
				t.Fatalf("NS answer %v", r.Answer)
			}
			if len(r.Extra) != 1 || r.Extra[0].(*dns.A).A.String() != "127.0.0.1" {
				t.Errorf("NS glue %v, want ns.strata.test A 127.0.0.1", r.Extra)
			}
		}},
		{desc: "outside the domain: REFUSED", name: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{desc: "ANY: minimal", name: ordersName, qtype: dns.TypeANY, verify: func(t *testing.T, r *dns.Msg) {
			if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeHINFO {
				t.Errorf("ANY answer %v, want one HINFO", r.Answer)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			for _, netw := range []string{"udp", "tcp"} {
				r := ask(t, netw, addr, question(tc.name, tc.qtype))
				if r.Rcode != tc.rcode {
					t.Fatalf("%s: rcode %s, want %s", netw, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if tc.rcode != dns.RcodeRefused && !r.Authoritative {
					t.Errorf("%s: AA not set", netw)
				}
				if got := sortedIPs(r); tc.ips != nil && !slices.Equal(got, tc.ips) {
					t.Errorf("%s: addresses %v, want %v", netw, got, tc.ips)
				}
				if tc.ips == nil && tc.srv == 0 && tc.verify == nil && len(r.Answer) != 0 {
					t.Errorf("%s: answer %v, want none", netw, r.Answer)
				}
				if tc.srv > 0 && len(r.Answer) != tc.srv {
					t.Errorf("%s: %d SRV records, want %d: %v", netw, len(r.Answer), tc.srv, r.Answer)
				}
				if tc.soa && soa(r) != "strata.test." {
					t.Errorf("%s: authority %v, want the SOA of strata.test", netw, r.Ns)
				}
				if !tc.soa && tc.rcode == 0 && len(r.Ns) != 0 {
					t.Errorf("%s: authority %v, want none", netw, r.Ns)
				}
				for _, rr := range r.Answer {
					if rr.Header().Rrtype != dns.TypeSOA && rr.Header().Rrtype != dns.TypeNS && rr.Header().Rrtype != dns.TypeHINFO && rr.Header().Ttl != 5 {
						t.Errorf("%s: TTL %d, want 5: %s", netw, rr.Header().Ttl, rr)
					}
				}
				if tc.verify != nil {
					tc.verify(t, r)
				}
			}
		})
	}
}

func itoa(v uint16) string { return strconv.Itoa(int(v)) }

// atomicSrc is a registry that comes and goes.
type atomicSrc struct{ p atomic.Pointer[ServiceSource] }

func (a *atomicSrc) set(s ServiceSource) { a.p.Store(&s) }

func (a *atomicSrc) get() ServiceSource {
	if p := a.p.Load(); p != nil {
		return *p
	}
	return nil
}

func netip4(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestRegistryFollowsChanges(t *testing.T) {
	n := startRegistry(t)
	register(t, n, orders, registry.Instance{IP: "127.0.0.5", Port: 8080}, registry.Instance{IP: "127.0.0.6", Port: 8080})
	_, addr := startRegistryServer(t, registryDNS(nil), func() ServiceSource { return nodeSrc{Node: n} })
	a := func(name string) []string { return sortedIPs(ask(t, "udp", addr, question(name, dns.TypeA))) }
	if got := a(ordersName); !slices.Equal(got, []string{"127.0.0.5", "127.0.0.6"}) {
		t.Fatalf("before: %v", got)
	}
	steps := []struct {
		desc string
		do   func()
		name string
		want []string
		nx   bool
	}{
		{"deregistered", func() {
			propose(t, n, &registry.Command{Op: registry.OpDeregister, Key: orders, IDs: []string{"127.0.0.5#8080#DEFAULT"}})
		}, ordersName, []string{"127.0.0.6"}, false},
		{"unhealthy", func() {
			register(t, n, orders, registry.Instance{IP: "127.0.0.7", Port: 8080})
			propose(t, n, &registry.Command{Op: registry.OpSetHealth, Key: orders, IDs: []string{"127.0.0.6#8080#DEFAULT"}, Healthy: false})
		}, ordersName, []string{"127.0.0.7"}, false},
		{"disabled", func() {
			register(t, n, orders, registry.Instance{IP: "127.0.0.8", Port: 8080})
			f := false
			propose(t, n, &registry.Command{Op: registry.OpPatch, Key: orders, IDs: []string{"127.0.0.7#8080#DEFAULT"}, Patch: &registry.Patch{Enabled: &f}})
		}, ordersName, []string{"127.0.0.8"}, false},
		{"a new service", func() {
			register(t, n, registry.Key{Namespace: "public", Group: "DEFAULT_GROUP", Service: "fresh"}, registry.Instance{IP: "127.0.0.9", Port: 80})
		}, "fresh.default_group.public.svc.strata.test.", []string{"127.0.0.9"}, false},
		{"the last instance leaves: the service goes", func() {
			propose(t, n, &registry.Command{Op: registry.OpDeregister, Key: registry.Key{Namespace: "public", Group: "DEFAULT_GROUP", Service: "fresh"}, IDs: []string{"127.0.0.9#80#DEFAULT"}})
		}, "fresh.default_group.public.svc.strata.test.", nil, true},
	}
	for _, st := range steps {
		st.do()
		poll(t, time.Second, st.desc, func() bool {
			r := ask(t, "udp", addr, question(st.name, dns.TypeA))
			if st.nx {
				return r.Rcode == dns.RcodeNameError
			}
			return slices.Equal(sortedIPs(r), st.want)
		})
	}
}

func TestRegistryProtectionThreshold(t *testing.T) {
	n := startRegistry(t)
	propose(t, n, &registry.Command{Op: registry.OpPutService, Service: &registry.Service{Key: orders, ProtectThreshold: 0.6}})
	register(t, n, orders, registry.Instance{IP: "127.0.0.5", Port: 8080}, registry.Instance{IP: "127.0.0.6", Port: 8080})
	propose(t, n, &registry.Command{Op: registry.OpSetHealth, Key: orders, IDs: []string{"127.0.0.6#8080#DEFAULT"}, Healthy: false})
	_, addr := startRegistryServer(t, registryDNS(nil), func() ServiceSource { return nodeSrc{Node: n} })
	// One healthy of two is below 0.6: every instance is answered, so a
	// false health signal cannot crush the survivor.
	if got := sortedIPs(ask(t, "udp", addr, question(ordersName, dns.TypeA))); !slices.Equal(got, []string{"127.0.0.5", "127.0.0.6"}) {
		t.Errorf("protected answer %v, want both", got)
	}
}

func TestRegistryCountByWeight(t *testing.T) {
	n := startRegistry(t)
	register(t, n, orders, registry.Instance{IP: "127.0.0.5", Port: 8080, Weight: 1}, registry.Instance{IP: "127.0.0.6", Port: 8080, Weight: 9})
	s, _ := startRegistryServer(t, registryDNS(func(d *config.DNS) { d.Registry.Count = 1 }), func() ServiceSource { return nodeSrc{Node: n} })
	req, _ := question(ordersName, dns.TypeA).Pack()
	w := newWorker(0, 7)
	client := netip4("127.0.0.1:5300")
	counts := map[string]int{}
	const total = 4000
	for i := 0; i < total; i++ {
		out := s.handle(w, req, client, false)
		r := new(dns.Msg)
		if err := r.Unpack(out); err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 {
			t.Fatalf("answer %v, want one record (count 1)", r.Answer)
		}
		counts[answerIPs(r)[0]]++
	}
	// Weight 9 of 10: 3600 expected, binomial sd about 19.
	if c := counts["127.0.0.6"]; c < 3450 || c > 3750 {
		t.Errorf("heavier instance answered %d of %d times, want about 3600 (%v)", c, total, counts)
	}
}

func TestRegistryInConfiguredZone(t *testing.T) {
	n := startRegistry(t)
	register(t, n, orders, registry.Instance{IP: "127.0.0.5", Port: 8080})
	dc := registryDNS(func(d *config.DNS) {
		d.Zones = []config.Zone{{Name: "strata.test", Records: []string{
			"@ SOA ns1 hostmaster 42 3600 600 86400 30", "@ NS ns1", "ns1 A 127.0.0.53", "www A 127.0.0.80",
		}}}
	})
	_, addr := startRegistryServer(t, dc, func() ServiceSource { return nodeSrc{Node: n} })
	if got := sortedIPs(ask(t, "udp", addr, question(ordersName, dns.TypeA))); !slices.Equal(got, []string{"127.0.0.5"}) {
		t.Errorf("registry name in a configured zone: %v", got)
	}
	if got := sortedIPs(ask(t, "udp", addr, question("www.strata.test.", dns.TypeA))); !slices.Equal(got, []string{"127.0.0.80"}) {
		t.Errorf("the zone's own record: %v", got)
	}
	r := ask(t, "udp", addr, question("nope.default_group.public.svc.strata.test.", dns.TypeA))
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].(*dns.SOA).Serial != 42 {
		t.Errorf("NXDOMAIN %s with authority %v, want the configured SOA (serial 42)", dns.RcodeToString[r.Rcode], r.Ns)
	}
}

func TestRegistryFoundLater(t *testing.T) {
	// The registry role starts after the dns role: the view asks for it
	// until it is there, and lets it go when it stops.
	n := startRegistry(t)
	register(t, n, orders, registry.Instance{IP: "127.0.0.5", Port: 8080})
	var src atomicSrc
	_, addr := startRegistryServer(t, registryDNS(nil), src.get)
	if r := ask(t, "udp", addr, question(ordersName, dns.TypeA)); r.Rcode != dns.RcodeNameError {
		t.Fatalf("without a registry: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	src.set(nodeSrc{Node: n})
	poll(t, time.Second, "the registry's answer", func() bool {
		return slices.Equal(sortedIPs(ask(t, "udp", addr, question(ordersName, dns.TypeA))), []string{"127.0.0.5"})
	})
	src.set(nil)
	poll(t, time.Second, "the names to go with the registry", func() bool {
		return ask(t, "udp", addr, question(ordersName, dns.TypeA)).Rcode == dns.RcodeNameError
	})
}

func TestRegistryRemote(t *testing.T) {
	n := startRegistry(t)
	register(t, n, orders, registry.Instance{IP: "127.0.0.5", Port: 8080}, registry.Instance{IP: "127.0.0.6", Port: 8080})
	dc := registryDNS(func(d *config.DNS) { d.Registry.Servers = []string{n.ID()} })
	s, addr := startRegistryServer(t, dc, nil)
	poll(t, 3*time.Second, "the remote registry's answer", func() bool {
		return slices.Equal(sortedIPs(ask(t, "udp", addr, question(ordersName, dns.TypeA))), []string{"127.0.0.5", "127.0.0.6"})
	})
	propose(t, n, &registry.Command{Op: registry.OpDeregister, Key: orders, IDs: []string{"127.0.0.5#8080#DEFAULT"}})
	poll(t, time.Second, "a deregistration to reach the answers", func() bool {
		return slices.Equal(sortedIPs(ask(t, "udp", addr, question(ordersName, dns.TypeA))), []string{"127.0.0.6"})
	})
	// A reload with the same servers keeps the source and its answers.
	before := s.remote
	dc2 := registryDNS(func(d *config.DNS) { d.Registry.Servers = []string{n.ID()}; d.Listen = []string{addr} })
	if err := s.Apply(dc2, nil); err != nil {
		t.Fatal(err)
	}
	if s.remote != before {
		t.Error("a reload with the same servers replaced the remote source")
	}
	if got := sortedIPs(ask(t, "udp", addr, question(ordersName, dns.TypeA))); !slices.Equal(got, []string{"127.0.0.6"}) {
		t.Errorf("right after the reload: %v", got)
	}
}

func TestSvcWireName(t *testing.T) {
	tail := wireName("svc.strata.test")
	tests := []struct {
		desc string
		key  regapi.Key
		want string // presentation, "" when it has no name
	}{
		{"plain", regapi.Key{Namespace: "public", Group: "DEFAULT_GROUP", Service: "orders"}, "orders.default_group.public.svc.strata.test."},
		{"dots split the service into labels", regapi.Key{Namespace: "dev", Group: "g", Service: "com.example.Orders"}, "com.example.orders.g.dev.svc.strata.test."},
		{"a dot in the group stays in its label", regapi.Key{Namespace: "dev", Group: "a.b", Service: "s"}, `s.a\.b.dev.svc.strata.test.`},
		{"underscores and colons are kept", regapi.Key{Namespace: "public", Group: "DEFAULT_GROUP", Service: "providers:com.foo:1.0"}, "providers:com.foo:1.0.default_group.public.svc.strata.test."},
		{"empty label", regapi.Key{Namespace: "public", Group: "g", Service: "a..b"}, ""},
		{"label too long", regapi.Key{Namespace: "public", Group: "g", Service: strings.Repeat("x", 64)}, ""},
		{"name too long", regapi.Key{Namespace: "public", Group: "g", Service: strings.Repeat("x.", 120) + "x"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			w, ok := svcWireName(tc.key, tail)
			if tc.want == "" {
				if ok {
					t.Errorf("got a name %x, want none", w)
				}
				return
			}
			if !ok {
				t.Fatal("no name")
			}
			if string(w) != string(wireName(tc.want)) {
				t.Errorf("wire %q, want %q", w, wireName(tc.want))
			}
			k, ok := parseSvcName(w, tail)
			lower := regapi.Key{Namespace: strings.ToLower(tc.key.Namespace), Group: strings.ToLower(tc.key.Group), Service: strings.ToLower(tc.key.Service)}
			if !ok || k != lower {
				t.Errorf("parsed back as %v %v, want %v", k, ok, lower)
			}
		})
	}
}

// FuzzSvcName checks that the service-name parser never panics, accepts
// only what the encoder can produce, and that encoding round-trips.
func FuzzSvcName(f *testing.F) {
	tail := wireName("svc.strata.test")
	f.Add("orders", "DEFAULT_GROUP", "public", []byte(nil))
	f.Add("com.example.Orders", "a.b", "dev", wireName(ordersName))
	f.Add("a..b", "", "x", []byte{3, 'a', '.', 'b', 1, 'g', 1, 'n', 3, 's', 'v', 'c', 0})
	f.Fuzz(func(t *testing.T, service, group, namespace string, raw []byte) {
		if k, ok := parseSvcName(raw, tail); ok {
			w, ok2 := svcWireName(k, tail)
			if !ok2 || string(w) != string(asciiLower(raw)) {
				t.Fatalf("parsed %x as %v, which encodes to %x (%v)", raw, k, w, ok2)
			}
		}
		key := regapi.Key{Namespace: namespace, Group: group, Service: service}
		w, ok := svcWireName(key, tail)
		if !ok {
			return
		}
		if len(w) > maxNameLen {
			t.Fatalf("name of %d bytes", len(w))
		}
		if _, _, err := dns.UnpackDomainName(append([]byte{}, w...), 0); err != nil {
			t.Fatalf("encoded %v as an invalid name %x: %v", key, w, err)
		}
		k, ok := parseSvcName(w, tail)
		if !ok || k.Namespace != string(asciiLower([]byte(namespace))) || k.Group != string(asciiLower([]byte(group))) || k.Service != string(asciiLower([]byte(service))) {
			t.Fatalf("%v encoded as %x parsed back as %v %v", key, w, k, ok)
		}
	})
}

func BenchmarkHandleRegistry(b *testing.B) {
	n := startRegistry(b)
	var ins []registry.Instance
	for i := 0; i < 8; i++ {
		ins = append(ins, registry.Instance{IP: "127.0.0." + strconv.Itoa(10+i), Port: 8080, Weight: float64(i + 1)})
	}
	register(b, n, orders, ins...)
	for _, bc := range []struct {
		name  string
		qtype uint16
		count int
	}{{"A-all", dns.TypeA, 0}, {"A-count2", dns.TypeA, 2}, {"SRV", dns.TypeSRV, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := NewServer(Options{Seed: 1, Logger: slog.New(slog.DiscardHandler), Services: func() ServiceSource { return nodeSrc{Node: n} }})
			if err != nil {
				b.Fatal(err)
			}
			dc := registryDNS(func(d *config.DNS) { d.Registry.Count = bc.count })
			t, err := buildTable(dc, nil, s.stats)
			if err != nil {
				b.Fatal(err)
			}
			t.svc.rebuild(nodeSrc{Node: n})
			s.tab.Store(t)
			m := question(ordersName, bc.qtype)
			m.SetEdns0(1232, false)
			req, _ := m.Pack()
			w := newWorker(0, 1)
			client := netip4("127.0.0.1:5300")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if s.handle(w, req, client, true) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
