package dnslb

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// testZone is the zone most tests serve.
var testRecords = []string{
	"@ 3600 IN SOA ns1 hostmaster 2024010101 3600 600 86400 300",
	"@ NS ns1",
	"ns1 A 192.0.2.53",
	"static A 192.0.2.1",
	"static A 192.0.2.2",
	"static AAAA 2001:db8::1",
	"alias CNAME static",
	"chain CNAME alias",
	"outside CNAME www.example.org.",
	"@ MX 10 mail",
	"mail A 192.0.2.25",
	`txt TXT "hello world"`,
	"_sip._tcp SRV 10 60 5060 sip",
	"sip A 192.0.2.60",
	`@ CAA 0 issue "letsencrypt.org"`,
	"*.wild A 192.0.2.77",
	"deep.empty.nonterminal A 192.0.2.99",
}

// bigTXT returns records that do not fit 512 bytes.
func bigTXT() []string {
	var out []string
	for i := 0; i < 8; i++ {
		out = append(out, `big TXT "`+strings.Repeat(string(rune('a'+i)), 200)+`"`)
	}
	return out
}

// newPool makes a pool of the given host:port backends with weights.
func newPool(t *testing.T, name string, addrs []string, weights []int) *upstream.Pool {
	t.Helper()
	b, err := balance.Builder("wrr", balance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := upstream.NewPool(name, upstream.Options{Builder: b})
	var specs []upstream.Spec
	for i, a := range addrs {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		specs = append(specs, upstream.Spec{Addr: a, Weight: w})
	}
	if err := p.Update(specs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// baseConfig is a dns section serving testRecords on a free port.
func baseConfig() *config.DNS {
	c := &config.Config{DNS: &config.DNS{
		Listen:     []string{"127.0.0.1:0"},
		UDPSockets: 2,
		Zones: []config.Zone{{
			Name:    "example.test",
			Records: append(append([]string(nil), testRecords...), bigTXT()...),
		}},
	}}
	c.ApplyDefaults()
	return c.DNS
}

// startServer applies dc and returns the server and its address.
func startServer(t *testing.T, dc *config.DNS, pools map[string]*upstream.Pool) (*Server, string) {
	t.Helper()
	if dc.MaxUDPSize == 0 {
		c := &config.Config{DNS: dc}
		c.ApplyDefaults()
	}
	s, err := NewServer(Options{Seed: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(dc, pools); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	addrs := s.Addrs()
	if len(addrs) != 1 {
		t.Fatalf("Addrs() = %v, want one", addrs)
	}
	return s, addrs[0]
}

// ask sends m over net ("udp" or "tcp") and returns the reply.
func ask(t *testing.T, netw, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query %s %s: %v", netw, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], err)
	}
	if r.Id != m.Id {
		t.Fatalf("reply id %d, want %d", r.Id, m.Id)
	}
	return r
}

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return m
}

// poll calls f until it returns true or the deadline passes.
func poll(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers returns the answer section as strings of "type value".
func answerIPs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	return out
}

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
