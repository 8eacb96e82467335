package config

import (
	"strings"
	"testing"
)

const l7ListenerBase = "pools:\n  - name: app\n    backends:\n      - address: 127.0.0.1:9001\nl7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      routes: [{pool: app}]\n"

func TestL7ListenerDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(l7ListenerBase+"      proxy_protocol: {allow: [127.0.0.1]}\n      access_log: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := c.L7.Listeners[0]
	if !l.HTTP2Enabled() || l.H2C || l.ProxyProtocol.Timeout != DefaultProxyProtocolTimeout ||
		l.AccessLog.Path != "stderr" || l.AccessLog.Format != "combined" || c.Pools[0].Protocol != "http1" {
		t.Errorf("defaults not applied: %+v %+v %+v pool protocol %q", l, l.ProxyProtocol, l.AccessLog, c.Pools[0].Protocol)
	}
}

func TestL7ListenerValidationErrors(t *testing.T) {
	tests := []struct {
		desc, extra, want string
	}{
		{desc: "tls without certificates", extra: "tls: {certificates: []}", want: "l7.listeners[0].tls.certificates: tls needs at least one certificate"},
		{desc: "certificate without key", extra: "tls: {certificates: [{cert_file: a.pem}]}", want: "tls.certificates[0].key_file: key_file is required"},
		{desc: "h2c with tls", extra: "tls: {certificates: [{cert_file: a, key_file: b}]}\n      h2c: true", want: "h2c is cleartext HTTP/2 and cannot be used with tls"},
		{desc: "proxy protocol without sources", extra: "proxy_protocol: {timeout: 1s}", want: "proxy_protocol.allow: list the sources"},
		{desc: "bad proxy source", extra: "proxy_protocol: {allow: [10.0.0.0/33]}", want: `proxy_protocol.allow[0]: "10.0.0.0/33" is not a CIDR or address`},
		{desc: "negative proxy timeout", extra: "proxy_protocol: {allow: [10.0.0.1], timeout: -1s}", want: "proxy_protocol.timeout: must be positive"},
		{desc: "bad trusted proxy", extra: "trusted_proxies: [example.com]", want: `trusted_proxies[0]: "example.com" is not a CIDR or address`},
		{desc: "unknown log format", extra: "access_log: {format: common}", want: `access_log.format: must be combined or json, got "common"`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(l7ListenerBase+"      "+tc.extra+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	_, err := Parse("t.yaml", []byte(strings.Replace(l7ListenerBase, "  - name: app\n", "  - name: app\n    protocol: spdy\n", 1)))
	if err == nil || !strings.Contains(err.Error(), `pools[0].protocol: must be http1, h2 or h2c, got "spdy"`) {
		t.Errorf("unknown pool protocol: error = %v", err)
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct{ desc, in, want string }{
		{desc: "cidr", in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{desc: "address", in: "192.0.2.7", want: "192.0.2.7/32"},
		{desc: "ipv6", in: "::1", want: "::1/128"},
		{desc: "mapped", in: "::ffff:10.0.0.1", want: "10.0.0.1/32"},
	}
	for _, tc := range tests {
		p, err := ParsePrefix(tc.in)
		if err != nil || p.String() != tc.want {
			t.Errorf("%s: ParsePrefix(%q) = %v, %v; want %s", tc.desc, tc.in, p, err, tc.want)
		}
	}
}
