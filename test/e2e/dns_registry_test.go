package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

const dnsRegistryConfig = `admin:
  listen: "off"
registry:
  listen: %s
  raft_listen: %s
  data: memory
dns:
  listen: ["%s"]
  registry:
    domain: strata.test
    ttl: 5s
`

// TestDNSRegistry runs one strata with a registry and a dns section:
// instances registered over the registry's HTTP API with curl are
// answered by dig and kdig as A and SRV records under
// <service>.<group>.<namespace>.svc.strata.test, and a deregistration
// leaves the answers within a second.
func TestDNSRegistry(t *testing.T) {
	testnet.NeedTool(t, "dig", "dnsutils")
	testnet.NeedTool(t, "kdig", "knot-dnsutils")
	testnet.NeedTool(t, "curl", "curl")
	regAddr, raftAddr, dnsAddr := freePort(t), freePort(t), freeUDPTCPPort(t)
	path := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(dnsRegistryConfig, regAddr, raftAddr, dnsAddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startStrata(t, path)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("strata log:\n%s", p.log.all.String())
		}
	})
	api := "http://" + regAddr + "/v1/registry/instances"
	// Ephemeral instances (the default) on loopback: the registry checks
	// no one, and the test ends long before a heartbeat is due.
	for _, body := range []string{
		`{"service":"orders","ip":"127.0.0.5","port":8080,"weight":1}`,
		`{"service":"orders","ip":"127.0.0.6","port":8080,"weight":3}`,
		`{"service":"com.example.Pay","group":"billing","ip":"127.0.0.7","port":443}`,
	} {
		eventually(t, 10*time.Second, "the registry to take a registration", func() bool {
			out, err := curlTry("-X", "PUT", api, "-d", body)
			return err == nil && strings.Contains(out, `"index"`)
		})
	}

	const orders = "orders.default_group.public.svc.strata.test"
	both := "127.0.0.5 127.0.0.6"
	eventually(t, 2*time.Second, "dig to answer both instances", func() bool {
		return strings.Join(shortIPs(t, dnsAddr, orders), " ") == both
	})
	// Names match case-insensitively; dots in a service name are labels.
	if got := strings.Join(shortIPs(t, dnsAddr, "COM.Example.PAY.Billing.public.svc.strata.test"), " "); got != "127.0.0.7" {
		t.Errorf("dotted service name: %q, want 127.0.0.7", got)
	}

	for _, tool := range []string{"dig", "kdig"} {
		out := digRun(t, tool, dnsAddr, orders, "SRV")
		for _, want := range []string{
			`0 100 8080 ip-127-0-0-5\.` + regexp.QuoteMeta(orders) + `\.`,
			`0 300 8080 ip-127-0-0-6\.` + regexp.QuoteMeta(orders) + `\.`,
			`ip-127-0-0-5\.` + regexp.QuoteMeta(orders) + `\.\s+5\s+IN\s+A\s+127\.0\.0\.5`,
			`(?i)flags: qr aa`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("%s SRV: no match for %s in:\n%s", tool, want, out)
			}
		}
		// The SRV target resolves.
		if got := strings.Fields(digRun(t, tool, dnsAddr, "+short", "ip-127-0-0-6."+orders, "A")); len(got) != 1 || got[0] != "127.0.0.6" {
			t.Errorf("%s: the SRV target answers %v, want 127.0.0.6", tool, got)
		}
		nx := digRun(t, tool, dnsAddr, "nope.default_group.public.svc.strata.test", "A")
		if !strings.Contains(nx, "NXDOMAIN") || !regexp.MustCompile(`strata\.test\.\s+\d+\s+IN\s+SOA`).MatchString(nx) {
			t.Errorf("%s: an unknown service: want NXDOMAIN with the SOA:\n%s", tool, nx)
		}
		nodata := digRun(t, tool, dnsAddr, orders, "TXT")
		if !strings.Contains(nodata, "NOERROR") || !regexp.MustCompile(`ANSWER: 0`).MatchString(nodata) || !strings.Contains(nodata, "SOA") {
			t.Errorf("%s: another type: want NODATA with the SOA:\n%s", tool, nodata)
		}
	}
	aaaa := digRun(t, "kdig", dnsAddr, orders, "AAAA")
	if !strings.Contains(aaaa, "NOERROR") || !strings.Contains(aaaa, "ANSWER: 0") {
		t.Errorf("AAAA of an IPv4-only service: want NODATA:\n%s", aaaa)
	}

	// Deregister: the answer changes within a second.
	curl(t, "-X", "DELETE", api+"?service=orders&ip=127.0.0.5&port=8080")
	gone := time.Now()
	deadline := gone.Add(time.Second)
	for {
		got := strings.Join(shortIPs(t, dnsAddr, orders), " ")
		if got == "127.0.0.6" {
			t.Logf("deregistration left the DNS answers after %v", time.Since(gone).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a second after the deregistration dig still answers %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv := digRun(t, "kdig", dnsAddr, "+short", orders, "SRV")
	if strings.Contains(srv, "127-0-0-5") || !strings.Contains(srv, "ip-127-0-0-6") {
		t.Errorf("SRV after the deregistration:\n%s", srv)
	}
}

// curlTry runs curl and returns its error instead of failing the test.
func curlTry(args ...string) (string, error) {
	out, err := exec.Command("curl", append([]string{"-sS", "--fail-with-body"}, args...)...).CombinedOutput()
	return string(out), err
}
