package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// trafficPlan bounds the demo's traffic generator: a rate, and a time and
// a count after which it stops by itself.
type trafficPlan struct {
	rate float64
	for_ time.Duration
	max  int
}

// traffic sends requests through the whole chain as a client out there
// would: it resolves www.ZONE with strata's DNS server, connects to the
// address it got on the VIP's port, and asks for /. Each request is a new
// connection, so each one meets l4's scheduler.
type traffic struct {
	setup demoSetup
	plan  trafficPlan
	log   *slog.Logger
	dns   *dns.Client
	http  *http.Client

	sent, ok, failed int
	by               map[string]int // answers per instance since the last report
}

func newTraffic(s demoSetup, plan trafficPlan, log *slog.Logger) *traffic {
	return &traffic{
		setup: s, plan: plan, log: log.With("traffic", "generator"),
		dns:  &dns.Client{Net: "udp", Timeout: time.Second},
		http: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		by:   map[string]int{},
	}
}

func (t *traffic) run(ctx context.Context) {
	if t.plan.max <= 0 || t.plan.rate <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.plan.for_)
	defer cancel()
	tick := time.NewTicker(time.Duration(float64(time.Second) / t.plan.rate))
	defer tick.Stop()
	report := time.NewTicker(10 * time.Second)
	defer report.Stop()
	defer t.report(true)
	for t.sent < t.plan.max {
		select {
		case <-ctx.Done():
			return
		case <-report.C:
			t.report(false)
		case <-tick.C:
			t.once(ctx)
		}
	}
}

func (t *traffic) once(ctx context.Context) {
	t.sent++
	who, err := t.request(ctx)
	if err != nil {
		if ctx.Err() != nil {
			t.sent-- // cut short by the demo's own stop, not a failure
			return
		}
		t.failed++
		t.log.Warn("request failed", "err", err)
		return
	}
	t.ok++
	t.by[who]++
}

// request resolves the name and sends one GET through the VIP.
func (t *traffic) request(ctx context.Context) (string, error) {
	name := dns.Fqdn("www." + t.setup.Zone)
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	ans, _, err := t.dns.ExchangeContext(ctx, q, t.setup.DNS)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", name, err)
	}
	var ip net.IP
	for _, rr := range ans.Answer {
		if a, ok := rr.(*dns.A); ok {
			ip = a.A
			break
		}
	}
	if ip == nil {
		return "", fmt.Errorf("resolving %s: no A record (rcode %s)", name, dns.RcodeToString[ans.Rcode])
	}
	_, port, _ := net.SplitHostPort(t.setup.VIP)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip.String(), port)+"/", nil)
	if err != nil {
		return "", err
	}
	req.Host = strings.TrimSuffix(name, ".")
	res, err := t.http.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", res.Status)
	}
	return res.Header.Get("X-Instance"), nil
}

// report logs the counts so far and who answered since the last report.
func (t *traffic) report(final bool) {
	names := make([]string, 0, len(t.by))
	for n := range t.by {
		names = append(names, n)
	}
	sort.Strings(names)
	split := make([]string, 0, len(names))
	for _, n := range names {
		split = append(split, fmt.Sprintf("%s:%d", n, t.by[n]))
	}
	msg := "traffic"
	if final {
		msg = "traffic stopped"
	}
	t.log.Info(msg, "sent", t.sent, "ok", t.ok, "failed", t.failed, "answered_by", strings.Join(split, " "))
	t.by = map[string]int{}
}
