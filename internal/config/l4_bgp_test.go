package config

import (
	"strings"
	"testing"
)

const l4BGPBase = l4Pools + "l4:\n  services:\n    - listen: 10.0.0.1:80\n      pool: app\n  bgp:\n    asn: 65001\n    router_id: 10.1.0.2\n    peers:\n      - {address: 10.1.0.1, asn: 65000}\n"

func TestL4BGPDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(l4BGPBase))
	if err != nil {
		t.Fatal(err)
	}
	b := c.L4.BGP
	if b.HoldTime != DefaultL4BGPHoldTime || b.Keepalive != DefaultL4BGPKeepalive || b.Lameduck != DefaultL4BGPLameduck || b.ListenPort != 0 || b.Peers[0].Port != 179 {
		t.Errorf("defaults not applied: %+v", b)
	}
	if b.MED != 0 || b.ASPathPrepend != 0 || len(b.Communities) != 0 || !b.VIPOnLoEnabled() {
		t.Errorf("route attribute defaults: med %d, prepend %d, communities %v, vip_on_lo %v; want 0, 0, none, true", b.MED, b.ASPathPrepend, b.Communities, b.VIPOnLoEnabled())
	}
	c, err = Parse("t.yaml", []byte(strings.Replace(l4BGPBase, "    peers:", "    vip_on_lo: false\n    peers:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.L4.BGP.VIPOnLoEnabled() {
		t.Error("vip_on_lo: false was not kept")
	}
}

func TestParseCommunity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"65001:100", 65001<<16 | 100, true},
		{"0:0", 0, true},
		{"no-export", 0xFFFFFF01, true},
		{"no-advertise", 0xFFFFFF02, true},
		{"65536:1", 0, false},
		{"1:65536", 0, false},
		{"100", 0, false},
		{"a:b", 0, false},
	} {
		got, err := ParseCommunity(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseCommunity(%q) = %#x, %v; want %#x, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestL4BGPValidationErrors: each bad field is reported by file:line and
// its path.
func TestL4BGPValidationErrors(t *testing.T) {
	for _, tc := range []struct{ desc, from, to, want string }{
		{"no asn", "asn: 65001", "asn: 0", "t.yaml:10: l4.bgp.asn: asn is required"},
		{"asn too big", "asn: 65001", "asn: 4294967296", "l4.bgp.asn: asn is required, from 1 to 4294967295"},
		{"bad router id", "router_id: 10.1.0.2", "router_id: ::1", `t.yaml:11: l4.bgp.router_id: router_id must be an IPv4 address`},
		{"bad peer", "address: 10.1.0.1", "address: router", `l4.bgp.peers[0].address: must be an IP address, got "router"`},
		{"peer asn", "asn: 65000}", "asn: 0}", "l4.bgp.peers[0].asn: asn is required"},
		{"duplicate peer", "asn: 65000}\n", "asn: 65000}\n      - {address: 10.1.0.1, asn: 65002}\n", "l4.bgp.peers[1].address: peer 10.1.0.1 is listed twice (first at line 13)"},
		{"short hold", "    peers:", "    hold_time: 2s\n    peers:", "l4.bgp.hold_time: must be whole seconds from 3s"},
		{"fractional hold", "    peers:", "    hold_time: 3500ms\n    peers:", "l4.bgp.hold_time: must be whole seconds"},
		{"keepalive not below hold", "    peers:", "    keepalive: 3s\n    peers:", "l4.bgp.keepalive: must be whole seconds, at least 1s and less than hold_time (3s)"},
		{"negative lameduck", "    peers:", "    lameduck: -1s\n    peers:", "l4.bgp.lameduck: must not be negative"},
		{"listen port", "    peers:", "    listen_port: 70000\n    peers:", "l4.bgp.listen_port: must be a port from 0"},
		{"negative med", "    peers:", "    med: -1\n    peers:", "t.yaml:12: l4.bgp.med: must be from 0 to 4294967295, got -1"},
		{"prepend too long", "    peers:", "    as_path_prepend: 11\n    peers:", "t.yaml:12: l4.bgp.as_path_prepend: must be from 0 to 10, got 11"},
		{"bad community", "    peers:", "    communities: [\"65001:100\", \"65001\"]\n    peers:", `t.yaml:12: l4.bgp.communities[1]: want ASN:VALUE`},
		{"no peers", "    peers:\n      - {address: 10.1.0.1, asn: 65000}\n", "    peers: []\n", "l4.bgp.peers: at least one peer is required"},
		{"wildcard VIP", "listen: 10.0.0.1:80", "listen: 0.0.0.0:80", `t.yaml:7: l4.services[0].listen: with l4.bgp every service announces its VIP, so listen needs a literal IP address, got "0.0.0.0"`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			y := strings.Replace(l4BGPBase, tc.from, tc.to, 1)
			if y == l4BGPBase {
				t.Fatal("the case did not change the config")
			}
			_, err := Parse("t.yaml", []byte(y))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
