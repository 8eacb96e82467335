package config

import (
	"strings"
	"testing"
)

const l4Pools = "pools:\n  - name: app\n    backends:\n      - address: 127.0.0.1:9001\n"

func TestL4Defaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(l4Pools+"l4:\n  services:\n    - listen: 127.0.0.1:9000\n      pool: app\n      upper_threshold: 100\n      persistence: {netmask: 24}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.L4.Services[0]
	if s.Name != "tcp/127.0.0.1:9000" || s.Protocol != "tcp" || s.LowerThreshold != 75 || s.ConnectTimeout != DefaultL4ConnectTimeout ||
		s.Timeouts.TCP != DefaultL4TCPTimeout || s.Timeouts.TCPFin != DefaultL4TCPFinTimeout || s.Timeouts.UDP != DefaultL4UDPTimeout ||
		s.Persistence.Timeout != DefaultL4Persistence || s.Persistence.Netmask != 24 || s.Persistence.Netmask6 != 128 {
		t.Errorf("defaults not applied: %+v", s)
	}
	if s.MaxConns != 0 || s.AcceptRate != 0 {
		t.Errorf("a tcp service got max_conns %d, accept_rate %d; want no bounds, as LVS", s.MaxConns, s.AcceptRate)
	}
}

// TestL4UDPBounds: a proxied UDP service is bounded by default (each
// session holds a socket); an explicit 0 removes a bound.
func TestL4UDPBounds(t *testing.T) {
	for _, tc := range []struct {
		desc, svc        string
		max, rate, burst int
	}{
		{"defaults", "", DefaultL4UDPMaxSessions, DefaultL4UDPSessionRate, DefaultL4UDPSessionRate},
		{"set", "\n      max_conns: 10\n      accept_rate: 5", 10, 5, 5},
		{"off", "\n      max_conns: 0\n      accept_rate: 0", 0, 0, 0},
	} {
		c, err := Parse("t.yaml", []byte(l4Pools+"l4:\n  services:\n    - listen: 127.0.0.1:9000\n      protocol: udp\n      pool: app"+tc.svc+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		s := c.L4.Services[0]
		if s.MaxConns != tc.max || s.AcceptRate != tc.rate || s.AcceptBurst != tc.burst {
			t.Errorf("%s: max_conns %d, accept_rate %d, accept_burst %d; want %d, %d, %d", tc.desc, s.MaxConns, s.AcceptRate, s.AcceptBurst, tc.max, tc.rate, tc.burst)
		}
	}
}

func TestL4ValidationErrors(t *testing.T) {
	tests := []struct {
		desc, svc, want string
	}{
		{desc: "unknown protocol", svc: "protocol: sctp", want: `l4.services[0].protocol: unknown protocol "sctp"`},
		{desc: "missing pool", svc: "pool: nope", want: `no pool named "nope"`},
		{desc: "unknown scheduler", svc: "scheduler: magic", want: `unknown scheduler "magic"`},
		{desc: "bad range", svc: "listen: 127.0.0.1:9010-9000", want: "the range ends before it starts"},
		{desc: "huge range", svc: "listen: 127.0.0.1:1000-9000", want: "more than the 1024"},
		{desc: "proxy protocol on udp", svc: "protocol: udp\n      proxy_protocol: v2", want: "tcp services only"},
		{desc: "unknown proxy version", svc: "proxy_protocol: v3", want: `unknown PROXY protocol version "v3"`},
		{desc: "thresholds upside down", svc: "upper_threshold: 10\n      lower_threshold: 10", want: "must be less than upper_threshold"},
		{desc: "negative limit", svc: "max_conns: -1", want: "max_conns: must not be negative"},
		{desc: "zero timeout", svc: "timeouts: {tcp: 0s}", want: "timeouts.tcp: must be positive"},
		{desc: "bad netmask", svc: "persistence: {netmask: 33}", want: "prefix length from 1 to 32"},
		{desc: "bad sorry server", svc: "sorry_server: nowhere", want: "sorry_server"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			fields := map[string]string{"listen": "127.0.0.1:9000", "pool": "app"}
			var extra []string
			for _, l := range strings.Split(tc.svc, "\n") {
				k, v, _ := strings.Cut(strings.TrimSpace(l), ": ")
				if _, ok := fields[k]; ok {
					fields[k] = v
				} else {
					extra = append(extra, "      "+k+": "+v+"\n")
				}
			}
			svc := "    - listen: \"" + fields["listen"] + "\"\n      pool: " + fields["pool"] + "\n" + strings.Join(extra, "")
			_, err := Parse("t.yaml", []byte(l4Pools+"l4:\n  services:\n"+svc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "t.yaml:") {
				t.Errorf("error %v does not cite file:line", err)
			}
		})
	}
}

func TestL4DuplicatePortAcrossServices(t *testing.T) {
	_, err := Parse("t.yaml", []byte(l4Pools+"l4:\n  services:\n    - {name: a, listen: \"127.0.0.1:9000-9005\", pool: app}\n    - {name: b, listen: \"127.0.0.1:9005\", pool: app}\n    - {name: c, protocol: udp, listen: \"127.0.0.1:9005\", pool: app}\n"))
	if err == nil || !strings.Contains(err.Error(), "tcp port 9005 is already used") || strings.Contains(err.Error(), "services[2]") {
		t.Fatalf("error = %v, want tcp port 9005 reported once (udp may share it)", err)
	}
}

func TestParseL4Listen(t *testing.T) {
	tests := []struct {
		desc, in    string
		host        string
		first, last int
		wantErr     bool
	}{
		{desc: "one port", in: "127.0.0.1:80", host: "127.0.0.1", first: 80, last: 80},
		{desc: "range", in: "[::1]:8000-8010", host: "::1", first: 8000, last: 8010},
		{desc: "any port", in: "127.0.0.1:0", host: "127.0.0.1", first: 0, last: 0},
		{desc: "range from 0", in: "127.0.0.1:0-5", wantErr: true},
		{desc: "no port", in: "127.0.0.1", wantErr: true},
		{desc: "word", in: "127.0.0.1:http", wantErr: true},
		{desc: "too high", in: "127.0.0.1:65536", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			h, f, l, err := ParseL4Listen(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && (h != tc.host || f != tc.first || l != tc.last) {
				t.Errorf("= %q %d %d, want %q %d %d", h, f, l, tc.host, tc.first, tc.last)
			}
		})
	}
}

func FuzzParseL4Listen(f *testing.F) {
	for _, s := range []string{"127.0.0.1:80", "[::1]:1-1024", ":0", "a:b-c", "1.2.3.4:65535-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, first, last, err := ParseL4Listen(s)
		if err != nil {
			return
		}
		if first < 0 || last > 65535 || last < first || last-first+1 > MaxL4PortRange {
			t.Fatalf("ParseL4Listen(%q) accepted ports %d-%d", s, first, last)
		}
	})
}

func TestL4KernelForwarding(t *testing.T) {
	const pool = "pools:\n  - name: app\n    backends:\n      - address: 10.0.0.11:80\n      - address: 10.0.0.12:80\n"
	const xdp = "  xdp: {devices: [eth0]}\n"
	c, err := Parse("t.yaml", []byte(pool+"l4:\n"+xdp+"  services:\n    - {listen: \"10.0.0.100:80\", pool: app, forward: dr}\n    - {listen: \"10.0.0.101:80\", pool: app}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.L4.XDP.Mode != DefaultL4XDPMode || c.L4.Services[0].Forward != "dr" || c.L4.Services[1].Forward != DefaultL4Forward {
		t.Errorf("defaults not applied: %+v %+v", c.L4.XDP, c.L4.Services)
	}
	tests := []struct {
		desc, l4, want string
	}{
		{desc: "unknown mode", l4: xdp + "  services:\n    - {listen: \"10.0.0.100:80\", pool: app, forward: nat}", want: `l4.services[0].forward: unknown forwarding mode "nat"`},
		{desc: "no xdp section", l4: "  services:\n    - {listen: \"10.0.0.100:80\", pool: app, forward: dr}", want: "l4.xdp.devices must name"},
		{desc: "no devices", l4: "  xdp: {mode: generic}\n  services:\n    - {listen: \"10.0.0.100:80\", pool: app}", want: "l4.xdp.devices: at least one device"},
		{desc: "bad xdp mode", l4: "  xdp: {devices: [eth0], mode: offload}\n  services:\n    - {listen: \"10.0.0.100:80\", pool: app}", want: `l4.xdp.mode: unknown XDP mode "offload"`},
		{desc: "wildcard VIP", l4: xdp + "  services:\n    - {listen: \"0.0.0.0:80\", pool: app, forward: tunnel}", want: "needs the VIP as a literal IP"},
		{desc: "port range", l4: xdp + "  services:\n    - {listen: \"10.0.0.100:80-81\", pool: app, forward: dr}", want: "needs one port"},
		{desc: "other port", l4: xdp + "  services:\n    - {listen: \"10.0.0.100:8080\", pool: app, forward: dr}", want: "pools[0].backends[0].address: service tcp/10.0.0.100:8080 forwards dr, which cannot change the port"},
		{desc: "proxy option", l4: xdp + "  services:\n    - {listen: \"10.0.0.100:80\", pool: app, forward: dr, proxy_protocol: v2}", want: "proxy_protocol is a forward: proxy option"},
		{desc: "scheduler", l4: xdp + "  services:\n    - {listen: \"10.0.0.100:80\", pool: app, forward: dr, scheduler: wlc}", want: "always schedules by Maglev"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(pool+"l4:\n"+tc.l4+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "t.yaml:") {
				t.Errorf("error %v does not cite file:line", err)
			}
		})
	}
}
