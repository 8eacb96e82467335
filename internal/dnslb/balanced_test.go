package dnslb

import (
	"net"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// lbConfig serves one balanced name www in example.test.
func lbConfig(b config.Balanced, views ...config.DNSView) *config.DNS {
	dc := baseConfig()
	b.Name = "www"
	dc.Zones[0].Balanced = []config.Balanced{b}
	dc.Views = views
	c := &config.Config{DNS: dc}
	c.ApplyDefaults()
	return dc
}

func askIPs(t *testing.T, addr string, qtype uint16) []string {
	t.Helper()
	r := ask(t, "udp", addr, question("www.example.test.", qtype))
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		t.Fatalf("rcode %s AA %v", dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	return answerIPs(r)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func TestBalancedWeights(t *testing.T) {
	pool := newPool(t, "web", []string{"192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"}, []int{6, 3, 1})
	_, addr := startServer(t, lbConfig(config.Balanced{Pool: "web", Count: 1, TTL: config.Duration(20 * time.Second)}), map[string]*upstream.Pool{"web": pool})
	const n = 3000
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		r := ask(t, "udp", addr, question("www.example.test.", dns.TypeA))
		if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 20 {
			t.Fatalf("answer %v, want one A with TTL 20", r.Answer)
		}
		counts[answerIPs(r)[0]]++
	}
	// Shares 0.6, 0.3, 0.1; with 3000 draws a share is within ±0.04 with
	// overwhelming probability (over 5 standard deviations).
	want := map[string]float64{"192.0.2.1": 0.6, "192.0.2.2": 0.3, "192.0.2.3": 0.1}
	for ip, share := range want {
		got := float64(counts[ip]) / n
		if got < share-0.04 || got > share+0.04 {
			t.Errorf("%s answered %.3f of the time, want %.2f±0.04 (counts %v)", ip, got, share, counts)
		}
	}
}

func TestBalancedAllRotated(t *testing.T) {
	pool := newPool(t, "web", []string{"192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"}, nil)
	_, addr := startServer(t, lbConfig(config.Balanced{Pool: "web"}), map[string]*upstream.Pool{"web": pool})
	firsts := map[string]int{}
	for i := 0; i < 300; i++ {
		ips := askIPs(t, addr, dns.TypeA)
		if got := sorted(ips); !slices.Equal(got, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}) {
			t.Fatalf("answer %v, want all three", ips)
		}
		firsts[ips[0]]++
	}
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if firsts[ip] < 50 {
			t.Errorf("%s came first %d of 300 times; want the order rotated (%v)", ip, firsts[ip], firsts)
		}
	}
}

func TestBalancedHealthAndFailover(t *testing.T) {
	primary := newPool(t, "primary", []string{"192.0.2.1:80", "192.0.2.2:80", "[2001:db8::1]:80"}, nil)
	backup := newPool(t, "backup", []string{"198.51.100.1:80"}, nil)
	pools := map[string]*upstream.Pool{"primary": primary, "backup": backup}
	b := config.Balanced{Groups: []config.BalancedGroup{{Pool: "primary", MinHealthy: 2}, {Pool: "backup"}}}
	_, addr := startServer(t, lbConfig(b), pools)

	steps := []struct {
		desc   string
		change func()
		want4  []string
		want6  []string
	}{
		{desc: "all healthy", change: func() {}, want4: []string{"192.0.2.1", "192.0.2.2"}, want6: []string{"2001:db8::1"}},
		// The backup has no IPv6, so AAAA keeps the primary's one address:
		// a group short of min_healthy still beats no answer.
		{desc: "one of two IPv4 down: below min_healthy 2, the backup answers A",
			change: func() { _ = primary.SetHealthy("192.0.2.2:80", false) },
			want4:  []string{"198.51.100.1"}, want6: []string{"2001:db8::1"}},
		{desc: "recovered", change: func() { _ = primary.SetHealthy("192.0.2.2:80", true) },
			want4: []string{"192.0.2.1", "192.0.2.2"}, want6: []string{"2001:db8::1"}},
		{desc: "drained backends leave the answers too", change: func() { _ = primary.SetState("192.0.2.1:80", upstream.StateDraining) },
			want4: []string{"198.51.100.1"}, want6: []string{"2001:db8::1"}},
		{desc: "everything down: fail open with the primary group", change: func() {
			_ = backup.SetHealthy("198.51.100.1:80", false)
			_ = primary.SetHealthy("192.0.2.2:80", false)
			_ = primary.SetHealthy("[2001:db8::1]:80", false)
		}, want4: []string{"192.0.2.1", "192.0.2.2"}, want6: []string{"2001:db8::1"}},
	}
	for _, st := range steps {
		st.change()
		if got := sorted(askIPs(t, addr, dns.TypeA)); !slices.Equal(got, st.want4) {
			t.Errorf("%s: A %v, want %v", st.desc, got, st.want4)
		}
		got6 := askIPs(t, addr, dns.TypeAAAA)
		if len(got6) == 0 {
			got6 = nil
		}
		if !slices.Equal(sorted(got6), st.want6) {
			t.Errorf("%s: AAAA %v, want %v", st.desc, got6, st.want6)
		}
	}
}

func TestBalancedFallback(t *testing.T) {
	pool := newPool(t, "web", []string{"192.0.2.1:80"}, nil)
	_, addr := startServer(t, lbConfig(config.Balanced{Pool: "web", Fallback: []string{"203.0.113.9"}}), map[string]*upstream.Pool{"web": pool})
	if got := askIPs(t, addr, dns.TypeA); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Fatalf("healthy: %v", got)
	}
	_ = pool.SetHealthy("192.0.2.1:80", false)
	if got := askIPs(t, addr, dns.TypeA); !slices.Equal(got, []string{"203.0.113.9"}) {
		t.Errorf("all down with a fallback: %v, want the fallback", got)
	}
	// No IPv6 fallback: NODATA with the SOA.
	r := ask(t, "udp", addr, question("www.example.test.", dns.TypeAAAA))
	if len(r.Answer) != 0 || len(r.Ns) != 1 || r.Rcode != dns.RcodeSuccess {
		t.Errorf("AAAA with no fallback: %v", r)
	}
}

func TestBalancedViews(t *testing.T) {
	def := newPool(t, "default", []string{"192.0.2.1:80"}, nil)
	eu := newPool(t, "eu", []string{"198.51.100.1:80"}, nil)
	local := newPool(t, "local", []string{"203.0.113.1:80"}, nil)
	pools := map[string]*upstream.Pool{"default": def, "eu": eu, "local": local}
	b := config.Balanced{Pool: "default", Views: []config.BalancedView{{View: "eu", Pool: "eu"}, {View: "loopback", Pool: "local"}}}
	views := []config.DNSView{{Name: "eu", Subnets: []string{"10.1.0.0/16"}}, {Name: "loopback", Subnets: []string{"127.0.0.0/8"}}}
	_, addr := startServer(t, lbConfig(b, views...), pools)

	withECS := func(ip string, bits uint8) *dns.Msg {
		m := question("www.example.test.", dns.TypeA)
		m.SetEdns0(1232, false)
		e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: bits, Address: net.ParseIP(ip).To4()}
		m.IsEdns0().Option = append(m.IsEdns0().Option, e)
		return m
	}
	tests := []struct {
		desc  string
		m     *dns.Msg
		want  string
		scope int // -1: no ECS expected
	}{
		{desc: "no ECS: the resolver's address (loopback view)", m: question("www.example.test.", dns.TypeA), want: "203.0.113.1", scope: -1},
		{desc: "ECS in the eu view", m: withECS("10.1.2.0", 24), want: "198.51.100.1", scope: 16},
		{desc: "ECS in no view: the default groups", m: withECS("192.0.2.0", 24), want: "192.0.2.1", scope: 24},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r := ask(t, "udp", addr, tc.m)
			if got := answerIPs(r); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("answer %v, want %s", got, tc.want)
			}
			var ecs *dns.EDNS0_SUBNET
			if o := r.IsEdns0(); o != nil {
				for _, op := range o.Option {
					if e, ok := op.(*dns.EDNS0_SUBNET); ok {
						ecs = e
					}
				}
			}
			switch {
			case tc.scope < 0 && ecs != nil:
				t.Errorf("ECS %v in the reply to a query without one", ecs)
			case tc.scope >= 0 && ecs == nil:
				t.Error("no ECS echoed")
			case tc.scope >= 0 && int(ecs.SourceScope) != tc.scope:
				t.Errorf("ECS scope %d, want %d", ecs.SourceScope, tc.scope)
			}
		})
	}
}

func TestBalancedSRV(t *testing.T) {
	pool := newPool(t, "web", []string{"192.0.2.1:8080", "[2001:db8::5]:8443"}, []int{5, 2})
	_, addr := startServer(t, lbConfig(config.Balanced{Pool: "web"}), map[string]*upstream.Pool{"web": pool})
	r := ask(t, "tcp", addr, question("www.example.test.", dns.TypeSRV))
	got := map[string]*dns.SRV{}
	for _, rr := range r.Answer {
		s := rr.(*dns.SRV)
		got[s.Target] = s
	}
	v4 := got["ip-192-0-2-1.www.example.test."]
	v6 := got["ip6-20010db8000000000000000000000005.www.example.test."]
	if v4 == nil || v6 == nil || v4.Port != 8080 || v4.Weight != 5 || v6.Port != 8443 || v6.Weight != 2 {
		t.Fatalf("SRV answer %v", r.Answer)
	}
	if len(r.Extra) != 2 {
		t.Errorf("glue %v, want the two addresses", r.Extra)
	}
	// The synthetic targets resolve on their own, for resolvers that
	// ignore the glue.
	a := ask(t, "udp", addr, question("ip-192-0-2-1.www.example.test.", dns.TypeA))
	if got := answerIPs(a); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("target A %v", got)
	}
}
