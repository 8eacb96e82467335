package health

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsServer serves ok.test. (A 192.0.2.1), NXDOMAIN for missing.test. and
// SERVFAIL for everything else.
func dnsServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn:        pc,
		NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			switch q := r.Question[0]; q.Name {
			case "ok.test.":
				m.Authoritative = true
				if q.Qtype == dns.TypeA {
					rr, _ := dns.NewRR("ok.test. 30 IN A 192.0.2.1")
					m.Answer = append(m.Answer, rr)
				}
			case "missing.test.":
				m.Rcode = dns.RcodeNameError
			default:
				m.Rcode = dns.RcodeServerFailure
			}
			w.WriteMsg(m)
		}),
	}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDNS(t *testing.T) {
	srv, silent, closed := dnsServer(t), udpSilent(t), closedAddr(t, "udp")
	tests := []struct {
		desc        string
		name, qtype string
		addr        string
		timeout     time.Duration
		wantErr     string
	}{
		{desc: "noerror with an answer passes", name: "ok.test", qtype: "A", addr: srv},
		{desc: "noerror without an answer passes", name: "ok.test", qtype: "aaaa", addr: srv},
		{desc: "nxdomain fails", name: "missing.test", qtype: "A", addr: srv, wantErr: "rcode NXDOMAIN, want NOERROR"},
		{desc: "servfail fails", name: "other.test", qtype: "A", addr: srv, wantErr: "rcode SERVFAIL"},
		{desc: "refused port fails", name: "ok.test", addr: closed, wantErr: "connection refused"},
		{desc: "silent server times out", name: "ok.test", addr: silent, timeout: 100 * time.Millisecond,
			wantErr: "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			d, err := NewDNS(tt.name, tt.qtype)
			if err != nil {
				t.Fatal(err)
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 3 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			checkErr(t, d.Check(ctx, tt.addr), tt.wantErr)
		})
	}
}

func TestDNSCancel(t *testing.T) {
	d, err := NewDNS("ok.test", "A")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err = d.Check(ctx, udpSilent(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("check canceled mid-read = %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("canceled check returned after %v; cancellation must wake the read", el)
	}
}

func TestNewDNSRejects(t *testing.T) {
	tests := []struct{ desc, name, qtype string }{
		{desc: "unknown type", name: "ok.test", qtype: "BOGUS"},
		{desc: "bad name", name: "a..b", qtype: "A"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if _, err := NewDNS(tt.name, tt.qtype); err == nil {
				t.Fatalf("NewDNS(%q, %q) succeeded", tt.name, tt.qtype)
			}
		})
	}
}
