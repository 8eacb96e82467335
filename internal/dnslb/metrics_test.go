package dnslb

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := NewServer(Options{Seed: 1, Logger: slog.New(slog.DiscardHandler), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	web := newPool(t, "web", []string{"192.0.2.1:80", "192.0.2.2:80"}, nil)
	unused := newPool(t, "unused", []string{"192.0.2.9:80"}, nil)
	if err := s.Apply(lbConfig(config.Balanced{Pool: "web"}), map[string]*upstream.Pool{"web": web, "unused": unused}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	addr := s.Addrs()[0]
	ask(t, "udp", addr, question("static.example.test.", dns.TypeA))
	ask(t, "udp", addr, question("static.example.test.", dns.TypeA))
	ask(t, "udp", addr, question("nope.example.test.", dns.TypeAAAA))
	ask(t, "tcp", addr, question("www.example.org.", dns.TypeMX))
	_ = web.SetHealthy("192.0.2.1:80", false)
	_ = unused.SetHealthy("192.0.2.9:80", false)

	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string, labels map[string]string) *dto.Metric {
		for _, f := range fams {
			if f.GetName() != name {
				continue
			}
		next:
			for _, m := range f.GetMetric() {
				for _, lp := range m.GetLabel() {
					if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
						continue next
					}
				}
				return m
			}
		}
		return nil
	}
	tests := []struct {
		desc   string
		name   string
		labels map[string]string
		want   float64
	}{
		{"static answers", "strata_dns_queries_total", map[string]string{"zone": "example.test.", "type": "A", "rcode": "NOERROR"}, 2},
		{"NXDOMAIN", "strata_dns_queries_total", map[string]string{"zone": "example.test.", "type": "AAAA", "rcode": "NXDOMAIN"}, 1},
		{"not our zone", "strata_dns_queries_total", map[string]string{"zone": "", "type": "MX", "rcode": "REFUSED"}, 1},
		{"removal from a pool a name uses", "strata_dns_health_removals_total", map[string]string{"pool": "web"}, 1},
	}
	for _, tc := range tests {
		m := get(tc.name, tc.labels)
		if m == nil || m.GetCounter().GetValue() != tc.want {
			t.Errorf("%s: %s%v = %v, want %v", tc.desc, tc.name, tc.labels, m, tc.want)
		}
	}
	if m := get("strata_dns_health_removals_total", map[string]string{"pool": "unused"}); m != nil {
		t.Errorf("removals counted for a pool no name uses: %v", m)
	}
	if h := get("strata_dns_answer_duration_seconds", nil); h == nil || h.GetHistogram().GetSampleCount() != 4 {
		t.Errorf("latency histogram %v, want 4 samples", h)
	}
}
