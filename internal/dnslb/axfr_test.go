package dnslb

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

const testSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="

func TestAXFR(t *testing.T) {
	pool := newPool(t, "web", []string{"192.0.2.1:80"}, nil)
	pools := map[string]*upstream.Pool{"web": pool}
	withTransfer := func(allow, key string) *config.DNS {
		dc := lbConfig(config.Balanced{Pool: "web"})
		dc.TSIGKeys = []config.TSIGKey{{Name: "xfr-key", Algorithm: "hmac-sha256", Secret: testSecret}}
		dc.Zones[0].Transfer = &config.Transfer{Allow: []string{allow}, Key: key}
		return dc
	}
	axfr := func(addr, keyName, secret string) ([]dns.RR, error) {
		tr := &dns.Transfer{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetAxfr("example.test.")
		if keyName != "" {
			tr.TsigSecret = map[string]string{keyName: secret}
			m.SetTsig(keyName, dns.HmacSHA256, 300, time.Now().Unix())
		}
		ch, err := tr.In(m, addr)
		if err != nil {
			return nil, err
		}
		var rrs []dns.RR
		for env := range ch {
			if env.Error != nil {
				return rrs, env.Error
			}
			rrs = append(rrs, env.RR...)
		}
		return rrs, nil
	}
	tests := []struct {
		desc        string
		allow, key  string
		signWith    string
		secret      string
		wantErr     string
		wantRecords bool
	}{
		{desc: "allowed, unsigned", allow: "127.0.0.0/8", wantRecords: true},
		{desc: "allowed, signed with the zone's key", allow: "127.0.0.0/8", key: "xfr-key", signWith: "xfr-key.", secret: testSecret, wantRecords: true},
		{desc: "key required, unsigned", allow: "127.0.0.0/8", key: "xfr-key", wantErr: "rcode: 9"},                                                                                 // NOTAUTH
		{desc: "key required, wrong secret", allow: "127.0.0.0/8", key: "xfr-key", signWith: "xfr-key.", secret: "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc=", wantErr: "no signature found"}, // an unsigned NOTAUTH
		{desc: "client not allowed", allow: "192.0.2.0/24", wantErr: "rcode: 5"},                                                                                                    // REFUSED
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, addr := startServer(t, withTransfer(tc.allow, tc.key), pools)
			rrs, err := axfr(addr, tc.signWith, tc.secret)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rrs) < 3 || rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
				t.Fatalf("transfer does not run from SOA to SOA: %v", rrs)
			}
			var text strings.Builder
			for _, rr := range rrs {
				text.WriteString(rr.String() + "\n")
			}
			for _, want := range []string{"static.example.test.\t3600\tIN\tA\t192.0.2.1", "MX\t10 mail.example.test.", "*.wild.example.test."} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("transfer lacks %q", want)
				}
			}
			if strings.Contains(text.String(), "www.example.test.") {
				t.Error("a load-balanced name was transferred")
			}
		})
	}
}

// TestTSIGAlgorithmNames: the wire names config lists for each TSIG
// algorithm (config imports no DNS library) are miekg/dns's, which signs
// and verifies with them.
func TestTSIGAlgorithmNames(t *testing.T) {
	want := map[string]string{
		"hmac-sha256": dns.HmacSHA256, "hmac-sha512": dns.HmacSHA512, "hmac-sha384": dns.HmacSHA384,
		"hmac-sha224": dns.HmacSHA224, "hmac-sha1": dns.HmacSHA1,
	}
	if len(config.TSIGAlgorithms) != len(want) {
		t.Errorf("config.TSIGAlgorithms has %d algorithms, want %d", len(config.TSIGAlgorithms), len(want))
	}
	for name, wire := range want {
		if got := config.TSIGAlgorithms[name]; got != wire {
			t.Errorf("config.TSIGAlgorithms[%q] = %q, want %q", name, got, wire)
		}
	}
}
