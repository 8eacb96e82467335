package config

import (
	"strings"
	"testing"
	"time"
)

func TestDNSDefaults(t *testing.T) {
	c, err := Parse("strata.yaml", []byte(pool+`dns:
  zones:
    - name: example.test
      balanced:
        - name: www
          pool: web
          views:
            - view: eu
              pool: web
  views:
    - name: eu
      subnets: [10.0.0.0/8]
  rrl:
    responses_per_second: 20
`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.DNS
	b := d.Zones[0].Balanced[0]
	checks := []struct {
		desc      string
		got, want any
	}{
		{"listen", d.Listen[0], DefaultDNSListen},
		{"max_udp_size", d.MaxUDPSize, DefaultDNSMaxUDPSize},
		{"tcp_max_conns", d.TCPMaxConns, DefaultDNSTCPMaxConns},
		{"tcp_idle_timeout", d.TCPIdleTimeout, DefaultDNSTCPIdleTimeout},
		{"zone ttl", d.Zones[0].TTL, DefaultZoneTTL},
		{"balanced ttl", b.TTL, DefaultBalancedTTL},
		{"pool becomes one group", len(b.Groups) == 1 && b.Groups[0].Pool == "web", true},
		{"min_healthy", b.Groups[0].MinHealthy, DefaultMinHealthy},
		{"view pool becomes one group", b.Views[0].Groups[0].MinHealthy, DefaultMinHealthy},
		{"rrl burst", d.RRL.Burst, 20},
		{"rrl slip", *d.RRL.Slip, DefaultRRLSlip},
		{"rrl ipv4_prefix", d.RRL.IPv4Prefix, DefaultRRLIPv4Prefix},
		{"rrl ipv6_prefix", d.RRL.IPv6Prefix, DefaultRRLIPv6Prefix},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.desc, c.got, c.want)
		}
	}
	if got := DefaultDNSTCPIdleTimeout.D(); got != 10*time.Second {
		t.Errorf("DefaultDNSTCPIdleTimeout = %s", got)
	}
}

// TestDNSValidateErrors checks that each mistake is reported at its line
// with its field path.
func TestDNSValidateErrors(t *testing.T) {
	zone := func(body string) string {
		return pool + "dns:\n  zones:\n    - name: example.test\n" + body
	}
	tests := []struct {
		desc, in, want string
	}{
		{desc: "no zones", in: pool + "dns:\n  listen: [\"127.0.0.1:53\"]\n", want: "strata.yaml:5: dns.zones: dns needs at least one zone"},
		{desc: "bad listen address", in: pool + "dns:\n  listen: [\"127.0.0.1\"]\n  zones:\n    - name: example.test\n", want: `strata.yaml:6: dns.listen[0]: "127.0.0.1" is not host:port`},
		{desc: "bad record", in: zone("      records:\n        - \"www A not-an-ip\"\n"), want: "strata.yaml:9: dns.zones[0].records[0]: parsing record"},
		{desc: "record outside the zone", in: zone("      records:\n        - \"www.example.org. A 192.0.2.1\"\n"), want: "strata.yaml:9: dns.zones[0].records[0]: www.example.org. is outside the zone example.test."},
		{desc: "directive in records", in: zone("      records:\n        - \"$INCLUDE /etc/passwd\"\n"), want: "dns.zones[0].records[0]: directives"},
		{desc: "balanced name with the zone", in: zone("      balanced:\n        - name: www.example.test.\n          pool: web\n"), want: "strata.yaml:9: dns.zones[0].balanced[0].name: \"www.example.test.\" is not a name relative to the zone"},
		{desc: "balanced name without a pool", in: zone("      balanced:\n        - name: www\n"), want: "dns.zones[0].balanced[0].groups: a balanced name needs a pool or groups"},
		{desc: "unknown pool", in: zone("      balanced:\n        - name: www\n          pool: nope\n"), want: `dns.zones[0].balanced[0].groups[0].pool: no pool named "nope"`},
		{desc: "unknown view", in: zone("      balanced:\n        - name: www\n          pool: web\n          views:\n            - view: mars\n              pool: web\n"), want: `strata.yaml:12: dns.zones[0].balanced[0].views[0].view: no view named "mars" in dns.views`},
		{desc: "bad fallback", in: zone("      balanced:\n        - name: www\n          pool: web\n          fallback: [nope]\n"), want: `strata.yaml:11: dns.zones[0].balanced[0].fallback[0]: "nope" is not an IP address`},
		{desc: "min_healthy 0", in: zone("      balanced:\n        - name: www\n          groups:\n            - pool: web\n              min_healthy: 0\n"), want: "strata.yaml:12: dns.zones[0].balanced[0].groups[0].min_healthy: must be at least 1, got 0"},
		{desc: "duplicate zone", in: zone("    - name: Example.Test.\n"), want: `dns.zones[1].name: zone "Example.Test." is configured twice`},
		{desc: "bad view subnet", in: pool + "dns:\n  views:\n    - name: eu\n      subnets: [10.0.0.0]\n  zones:\n    - name: example.test\n", want: `strata.yaml:8: dns.views[0].subnets[0]: "10.0.0.0" is not a CIDR prefix`},
		{desc: "rrl without a rate", in: zone("  rrl:\n    slip: 2\n"), want: "dns.rrl.responses_per_second: must be at least 1, got 0"},
		{desc: "transfer without allow", in: zone("      transfer:\n        key: k\n"), want: "dns.zones[0].transfer.allow: list the secondaries' prefixes"},
		{desc: "transfer with an unknown key", in: zone("      transfer:\n        allow: [127.0.0.1/32]\n        key: nope\n"), want: `strata.yaml:10: dns.zones[0].transfer.key: no key named "nope" in dns.tsig_keys`},
		{desc: "short TSIG secret", in: zone("  tsig_keys:\n    - name: k\n      secret: c2hvcnQ=\n"), want: "strata.yaml:10: dns.tsig_keys[0].secret: must be at least 16 bytes in base64"},
		{desc: "unknown TSIG algorithm", in: zone("  tsig_keys:\n    - name: k\n      algorithm: md5\n      secret: c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==\n"), want: `dns.tsig_keys[0].algorithm: unknown algorithm "md5"`},
		{desc: "max_udp_size too small", in: zone("  max_udp_size: 100\n"), want: "strata.yaml:8: dns.max_udp_size: must be from 512 to 65535, got 100"},
		{desc: "registry without a domain", in: pool + "dns:\n  registry:\n    servers: [\"127.0.0.1:8848\"]\n", want: `strata.yaml:6: dns.registry.domain: "" is not a domain name`},
		{desc: "registry with no registry to read", in: pool + "dns:\n  registry:\n    domain: strata.test\n", want: "strata.yaml:6: dns.registry.servers: no registry to answer from"},
		{desc: "registry server without a port", in: pool + "dns:\n  registry:\n    domain: strata.test\n    servers: [127.0.0.1]\n", want: `strata.yaml:8: dns.registry.servers[0]: "127.0.0.1" is not host:port`},
		{desc: "registry namespace twice", in: pool + "dns:\n  registry:\n    domain: strata.test\n    servers: [\"127.0.0.1:8848\"]\n    namespaces: [dev, Dev]\n", want: `dns.registry.namespaces[1]: namespace "Dev" is listed twice`},
		{desc: "registry negative count", in: pool + "dns:\n  registry:\n    domain: strata.test\n    servers: [\"127.0.0.1:8848\"]\n    count: -1\n", want: "strata.yaml:9: dns.registry.count: must not be negative, got -1"},
		{desc: "a zone under the registry's names", in: pool + "dns:\n  registry:\n    domain: strata.test\n    servers: [\"127.0.0.1:8848\"]\n  zones:\n    - name: x.svc.strata.test\n", want: "dns.zones[0].name: zone x.svc.strata.test. lies under svc.strata.test."},
		{desc: "registry token without servers", in: pool + "registry:\n  data: memory\ndns:\n  registry:\n    domain: strata.test\n    token: t\n", want: "strata.yaml:10: dns.registry.token: a token is sent to servers"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("strata.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

// TestDNSDocExamples keeps every YAML example in docs/dns.md valid, so a
// user who pastes one gets a config that runs.
func TestDNSDocExamples(t *testing.T) {
	doc := string(mustRead(t, "../../docs/dns.md"))
	n := 0
	for _, block := range strings.Split(doc, "```yaml\n")[1:] {
		body, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatal("unterminated yaml block in docs/dns.md")
		}
		n++
		if _, err := Parse("docs/dns.md example", []byte(body)); err != nil {
			t.Errorf("example %d does not validate: %v\n%s", n, err, body)
		}
	}
	if n < 3 {
		t.Errorf("found %d yaml examples in docs/dns.md, want at least 3", n)
	}
}

func TestDNSRegistryDefaults(t *testing.T) {
	c, err := Parse("strata.yaml", []byte("registry:\n  data: memory\ndns:\n  registry:\n    domain: strata.test\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.DNS.Registry
	if r.TTL != DefaultDNSRegistryTTL || len(r.Namespaces) != 1 || r.Namespaces[0] != "public" || r.Count != 0 || len(c.DNS.Zones) != 0 {
		t.Errorf("defaults: %+v", r)
	}
}
