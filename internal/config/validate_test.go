package config

import (
	"strings"
	"testing"
)

// pool is a valid pool for tests to append fields to; its lines are 1-4 of
// every document that starts with it.
const pool = `pools:
  - name: web
    backends:
      - address: 127.0.0.1:8001
`

// TestValidateErrors covers every class of stage-three error. Each want is
// the whole error text: file, line, field path and message.
func TestValidateErrors(t *testing.T) {
	tests := []struct {
		desc string
		in   string
		want string
	}{
		// admin
		{
			desc: "admin.listen without a port",
			in:   "admin:\n  listen: 127.0.0.1\n",
			want: `strata.yaml:2: admin.listen: "127.0.0.1" is not host:port`,
		},
		{
			desc: "backend address with port 0",
			in:   "pools:\n  - name: app\n    backends:\n      - address: 127.0.0.1:0\n",
			want: `strata.yaml:4: pools[0].backends[0].address: "127.0.0.1:0": port must be a number from 1 to 65535`,
		},
		{
			desc: "admin.listen with a named port",
			in:   "admin:\n  listen: localhost:http\n",
			want: `strata.yaml:2: admin.listen: "localhost:http": port must be a number from 0 to 65535`,
		},
		{
			desc: "non-loopback admin.listen needs a token",
			in:   "admin:\n  listen: 0.0.0.0:9901\n",
			want: `strata.yaml:2: admin.listen: "0.0.0.0:9901" is not a loopback address, so admin.token or admin.token_file is required`,
		},
		{
			desc: "all-interfaces admin.listen needs a token",
			in:   "admin:\n  pprof: false\n  listen: :9901\n",
			want: `strata.yaml:3: admin.listen: ":9901" is not a loopback address, so admin.token or admin.token_file is required`,
		},
		{
			desc: "token and token_file together",
			in:   "admin:\n  token: s3cret\n  token_file: /etc/strata/token\n",
			want: `strata.yaml:3: admin.token_file: set token or token_file, not both`,
		},
		// log and top level
		{
			desc: "unknown log level",
			in:   "log:\n  level: verbose\n",
			want: `strata.yaml:2: log.level: unknown level "verbose" (want debug, info, warn or error)`,
		},
		{
			desc: "unknown log format",
			in:   "log:\n  format: xml\n",
			want: `strata.yaml:2: log.format: unknown format "xml" (want text or json)`,
		},
		{
			desc: "negative shutdown_timeout",
			in:   "shutdown_timeout: -1s\n",
			want: `strata.yaml:1: shutdown_timeout: must not be negative, got -1s`,
		},
		{
			desc: "negative shutdown_delay",
			in:   "shutdown_delay: -1s\n",
			want: `strata.yaml:1: shutdown_delay: must not be negative, got -1s`,
		},
		{
			desc: "health_path without a leading slash",
			in:   pool + "l7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      health_path: healthz\n      routes:\n        - pool: web\n",
			want: `strata.yaml:8: l7.listeners[0].health_path: "healthz" must start with /`,
		},
		// pools
		{
			desc: "pool without a name",
			in:   "pools:\n  - lb: rr\n",
			want: `strata.yaml:2: pools[0].name: pool name is required`,
		},
		{
			desc: "duplicate pool name",
			in:   pool + "  - name: web\n",
			want: `strata.yaml:5: pools[1].name: duplicate pool name "web" (first at line 2)`,
		},
		{
			desc: "unknown lb",
			in:   pool + "    lb: fastest\n",
			want: `strata.yaml:5: pools[0].lb: unknown load-balancing algorithm "fastest" (have `,
		},
		{
			desc: "negative slow_start",
			in:   pool + "    slow_start: -5s\n",
			want: `strata.yaml:5: pools[0].slow_start: must not be negative, got -5s`,
		},
		// backends
		{
			desc: "backend address without a host",
			in:   pool + "      - address: :8002\n",
			want: `strata.yaml:5: pools[0].backends[1].address: ":8002": host is required`,
		},
		{
			desc: "backend address port too large",
			in:   pool + "      - address: 127.0.0.1:65536\n",
			want: `strata.yaml:5: pools[0].backends[1].address: "127.0.0.1:65536": port must be a number from 1 to 65535`,
		},
		{
			desc: "backend without an address",
			in:   pool + "      - name: b\n",
			want: `strata.yaml:5: pools[0].backends[1].address: address is required (host:port)`,
		},
		{
			desc: "duplicate backend address names the first one",
			in:   pool + "      - address: 127.0.0.1:8001\n",
			want: `strata.yaml:5: pools[0].backends[1].name: duplicate backend name "127.0.0.1:8001" in this pool (first at line 4)`,
		},
		{
			desc: "duplicate backend name",
			in:   pool + "        name: a\n      - address: 127.0.0.1:8002\n        name: a\n",
			want: `strata.yaml:7: pools[0].backends[1].name: duplicate backend name "a" in this pool (first at line 5)`,
		},
		{
			desc: "negative weight",
			in:   pool + "        weight: -1\n",
			want: `strata.yaml:5: pools[0].backends[0].weight: must not be negative, got -1`,
		},
		{
			desc: "unknown state",
			in:   pool + "        state: sleeping\n",
			want: `strata.yaml:5: pools[0].backends[0].state: unknown backend state "sleeping" (want up, down, draining or maintenance)`,
		},
		// health
		{
			desc: "health without a type",
			in:   pool + "    health:\n      interval: 10s\n",
			want: `strata.yaml:5: pools[0].health.type: type is required (want tcp, http, https, udp, dns, exec)`,
		},
		{
			desc: "unknown health type",
			in:   pool + "    health:\n      type: grpc\n",
			want: `strata.yaml:6: pools[0].health.type: unknown type "grpc" (want tcp, http, https, udp, dns, exec)`,
		},
		{
			desc: "timeout not less than interval",
			in:   pool + "    health:\n      type: tcp\n      interval: 1s\n      timeout: 1s\n",
			want: `strata.yaml:8: pools[0].health.timeout: 1s must be less than interval (1s)`,
		},
		{
			desc: "default timeout against a short interval cites the section",
			in:   pool + "    health:\n      type: tcp\n      interval: 1s\n",
			want: `strata.yaml:5: pools[0].health.timeout: 2s must be less than interval (1s)`,
		},
		{
			desc: "explicit zero interval is kept and rejected",
			in:   pool + "    health:\n      type: tcp\n      interval: 0s\n",
			want: `strata.yaml:7: pools[0].health.interval: must be positive, got 0s`,
		},
		{
			desc: "explicit zero timeout is kept and rejected",
			in:   pool + "    health:\n      type: tcp\n      timeout: 0s\n",
			want: `strata.yaml:7: pools[0].health.timeout: must be positive, got 0s`,
		},
		{
			desc: "negative jitter",
			in:   pool + "    health:\n      type: tcp\n      jitter: -1s\n",
			want: `strata.yaml:7: pools[0].health.jitter: must not be negative, got -1s`,
		},
		{
			desc: "explicit zero rise",
			in:   pool + "    health:\n      type: tcp\n      rise: 0\n",
			want: `strata.yaml:7: pools[0].health.rise: must be at least 1, got 0`,
		},
		{
			desc: "negative fall",
			in:   pool + "    health:\n      type: tcp\n      fall: -3\n",
			want: `strata.yaml:7: pools[0].health.fall: must be at least 1, got -3`,
		},
		{
			desc: "health port out of range",
			in:   pool + "    health:\n      type: tcp\n      port: 70000\n",
			want: `strata.yaml:7: pools[0].health.port: must be from 1 to 65535 (or 0 for the backend's port), got 70000`,
		},
		{
			desc: "bad expect_status",
			in:   pool + "    health:\n      type: http\n      expect_status: 200-abc\n",
			want: `strata.yaml:7: pools[0].health.expect_status: bad status "200-abc": want codes 100-599 or ranges like 200-299`,
		},
		{
			desc: "http path must be absolute",
			in:   pool + "    health:\n      type: https\n      path: healthz\n",
			want: `strata.yaml:7: pools[0].health.path: "healthz" must start with /`,
		},
		{
			desc: "exec needs a command",
			in:   pool + "    health:\n      type: exec\n",
			want: `strata.yaml:5: pools[0].health.command: exec checks need a command`,
		},
		{
			desc: "exec command with an empty program",
			in:   pool + "    health:\n      type: exec\n      command: [\"\", x]\n",
			want: `strata.yaml:7: pools[0].health.command: exec checks need a command`,
		},
		{
			desc: "udp needs send",
			in:   pool + "    health:\n      type: udp\n      expect: pong\n",
			want: `strata.yaml:5: pools[0].health.send: udp checks need a payload to send`,
		},
		{
			desc: "unknown query_type",
			in:   pool + "    health:\n      type: dns\n      query_type: AAAAA\n",
			want: `strata.yaml:7: pools[0].health.query_type: unknown DNS type "AAAAA" (want a type name like A, AAAA or SRV)`,
		},
		{
			desc: "bad query",
			in:   pool + "    health:\n      type: dns\n      query: a..b\n",
			want: `strata.yaml:7: pools[0].health.query: "a..b" is not a domain name`,
		},
		// passive
		{
			desc: "negative max_fails",
			in:   pool + "    passive:\n      max_fails: -1\n",
			want: `strata.yaml:6: pools[0].passive.max_fails: must not be negative, got -1`,
		},
		{
			desc: "explicit zero base_ejection",
			in:   pool + "    passive:\n      base_ejection: 0s\n",
			want: `strata.yaml:6: pools[0].passive.base_ejection: must be positive, got 0s`,
		},
		{
			desc: "max_ejection below base_ejection",
			in:   pool + "    passive:\n      base_ejection: 10m\n",
			want: `strata.yaml:5: pools[0].passive.max_ejection: 5m0s must not be less than base_ejection (10m0s)`,
		},
		// l7
		{
			desc: "l7 without listeners",
			in:   pool + "l7:\n  listeners: []\n",
			want: `strata.yaml:6: l7.listeners: l7 needs at least one listener`,
		},
		{
			desc: "listener without routes",
			in:   pool + "l7:\n  listeners:\n    - listen: 127.0.0.1:8080\n",
			want: `strata.yaml:7: l7.listeners[0].routes: a listener needs at least one route`,
		},
		{
			desc: "route to a missing pool",
			in: pool + `l7:
  listeners:
    - listen: 127.0.0.1:8080
      routes:
        - path_prefix: /api
          pool: api
`,
			want: `strata.yaml:10: l7.listeners[0].routes[0].pool: no pool named "api" (have "web")`,
		},
		{
			desc: "route without a pool",
			in:   pool + "l7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      routes:\n        - host: example.com\n",
			want: `strata.yaml:9: l7.listeners[0].routes[0].pool: pool is required`,
		},
		{
			desc: "route path_prefix must be absolute",
			in:   pool + "l7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      routes:\n        - path_prefix: api\n          pool: web\n",
			want: `strata.yaml:9: l7.listeners[0].routes[0].path_prefix: "api" must start with /`,
		},
		{
			desc: "route path_prefix with a dot segment",
			in:   pool + "l7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      routes:\n        - path_prefix: /a/../admin/\n          pool: web\n",
			want: `strata.yaml:9: l7.listeners[0].routes[0].path_prefix: "/a/../admin/" has an empty or dot segment, which no normalised request path has`,
		},
		{
			desc: "route path with a doubled slash",
			in:   pool + "l7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      routes:\n        - path: //admin\n          pool: web\n",
			want: `strata.yaml:9: l7.listeners[0].routes[0].path: "//admin" has an empty or dot segment, which no normalised request path has`,
		},
		{
			desc: "listener without listen",
			in:   pool + "l7:\n  listeners:\n    - name: public\n      routes: [{pool: web}]\n",
			want: `strata.yaml:7: l7.listeners[0].listen: address is required (host:port)`,
		},
		{
			desc: "duplicate listen address",
			in: pool + `l7:
  listeners:
    - name: a
      listen: 127.0.0.1:8080
      routes: [{pool: web}]
    - name: b
      listen: 127.0.0.1:8080
      routes: [{pool: web}]
`,
			want: `strata.yaml:11: l7.listeners[1].listen: "127.0.0.1:8080" is already used by another listener (line 8)`,
		},
		{
			desc: "duplicate listener name",
			in: pool + `l7:
  listeners:
    - name: public
      listen: 127.0.0.1:8080
      routes: [{pool: web}]
    - name: public
      listen: 127.0.0.1:8081
      routes: [{pool: web}]
`,
			want: `strata.yaml:10: l7.listeners[1].name: duplicate listener name "public" (first at line 7)`,
		},
		{
			desc: "listener on the admin address",
			in:   pool + "l7:\n  listeners:\n    - listen: 127.0.0.1:9901\n      routes: [{pool: web}]\n",
			want: `strata.yaml:7: l7.listeners[0].listen: "127.0.0.1:9901" is already used by admin.listen`,
		},
		{
			desc: "every problem is reported, in order",
			in: `log:
  level: loud
pools:
  - name: web
    backends:
      - address: nowhere
        weight: -2
`,
			want: `strata.yaml:2: log.level: unknown level "loud" (want debug, info, warn or error)` + "\n" +
				`strata.yaml:6: pools[0].backends[0].address: "nowhere" is not host:port` + "\n" +
				`strata.yaml:7: pools[0].backends[0].weight: must not be negative, got -2`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Parse("strata.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v; want error %q", c, tc.want)
			}
			got := err.Error()
			// The lb message lists the registered algorithms, which grow as
			// they are added; match its stable start only.
			if strings.HasSuffix(tc.want, "(have ") && strings.HasPrefix(got, tc.want) && !strings.Contains(got, "\n") {
				return
			}
			if got != tc.want {
				t.Errorf("wrong error\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

// TestValidateAccepts covers the edges that must stay valid, so that the
// checks above do not grow too strict.
func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		desc string
		in   string
	}{
		{"admin off", "admin:\n  listen: \"off\"\n"},
		{"listeners on port 0 (any free port)", "admin:\n  listen: 127.0.0.1:0\n" + pool + "l7:\n  listeners:\n    - name: a\n      listen: 127.0.0.1:0\n      routes:\n        - pool: web\n    - name: b\n      listen: 127.0.0.1:0\n      routes:\n        - pool: web\n"},
		{"admin on IPv6 loopback", "admin:\n  listen: \"[::1]:9901\"\n"},
		{"admin on localhost", "admin:\n  listen: localhost:9901\n"},
		{"admin on 127.0.0.2", "admin:\n  listen: 127.0.0.2:9901\n"},
		{"admin public with token", "admin:\n  listen: 0.0.0.0:9901\n  token: s3cret\n"},
		{"admin public with token_file", "admin:\n  listen: \"[::]:9901\"\n  token_file: /run/secrets/token\n"},
		{"zero shutdown timeout means do not wait", "shutdown_timeout: 0s\n"},
		{"backend by host name", pool + "      - address: app.internal:8080\n"},
		{"zero weight", pool + "        weight: 0\n"},
		{"same backend name in two pools", pool + "  - name: api\n    backends:\n      - address: 127.0.0.1:8001\n"},
		{"pool without backends", "pools:\n  - name: registry-fed\n"},
		{"passive off", pool + "    passive:\n      max_fails: 0\n"},
		{"zero jitter", pool + "    health:\n      type: tcp\n      jitter: 0s\n"},
		{"every algorithm the balance package has", pool + "    lb: rr\n"},
		{"udp with send", pool + "    health:\n      type: udp\n      send: ping\n"},
		{"dns SRV", pool + "    health:\n      type: dns\n      query: _http._tcp.example.com\n      query_type: SRV\n"},
		{"listener on all interfaces", pool + "l7:\n  listeners:\n    - listen: :8080\n      routes: [{pool: web}]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if _, err := Parse("strata.yaml", []byte(tc.in)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

// TestDefaultsKeepExplicitValues checks that defaults fill only what the
// file left out, and that a Config built in code gets them too.
func TestDefaultsKeepExplicitValues(t *testing.T) {
	c, err := Parse("strata.yaml", []byte(pool+`        weight: 0
    health:
      type: tcp
      interval: 10s
      jitter: 0s
    passive:
      max_fails: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Pools[0]
	if *p.Backends[0].Weight != 0 || *p.Health.Jitter != 0 || *p.Passive.MaxFails != 0 {
		t.Errorf("explicit zeros were overwritten: weight %d, jitter %s, max_fails %d",
			*p.Backends[0].Weight, *p.Health.Jitter, *p.Passive.MaxFails)
	}
	if p.Health.Interval.D().Seconds() != 10 || p.Health.Timeout != DefaultTimeout || p.Health.Path != "" {
		t.Errorf("health = %+v; want interval 10s, default timeout and no HTTP path on a tcp check", p.Health)
	}

	// Built in code: no positions, so zero means absent.
	built := &Config{Pools: []Pool{{Name: "p", Health: &HealthCheck{Type: "http", Interval: Duration(10e9)}}}}
	built.ApplyDefaults()
	if err := built.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	h := built.Pools[0].Health
	if h.Rise != DefaultRise || h.Timeout != DefaultTimeout || *h.Jitter != Duration(1e9) || h.ExpectStatus != DefaultExpectStatus {
		t.Errorf("defaults not applied to a built config: %+v", h)
	}
	before := *built.Pools[0].Health
	built.ApplyDefaults()
	if *built.Pools[0].Health.Jitter != *before.Jitter || built.Pools[0].Health.Rise != before.Rise {
		t.Error("ApplyDefaults is not idempotent")
	}
}

// pprof is on by default only on a loopback admin listener: profiles show
// the process's arguments and cost CPU.
func TestPprofDefaultFollowsListen(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want bool
	}{
		{"admin: {listen: 127.0.0.1:9901}", true},
		{"admin: {listen: \"[::1]:9901\"}", true},
		{"admin: {listen: localhost:9901}", true},
		{"admin: {listen: 0.0.0.0:9901, token: t}", false},
		{"admin: {listen: 192.0.2.1:9901, token: t}", false},
		{"admin: {listen: 0.0.0.0:9901, token: t, pprof: true}", true},
		{"admin: {listen: off}", false},
	} {
		c, err := Parse("t.yaml", []byte(tc.yaml+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		if *c.Admin.Pprof != tc.want {
			t.Errorf("%s: pprof = %v, want %v", tc.yaml, *c.Admin.Pprof, tc.want)
		}
	}
}
