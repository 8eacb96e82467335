package discovery

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/pkg/client"
)

// TestRefusal: which registry instances may become backends. By default
// anything but loopback, link-local, unspecified and multicast; with an
// allow list only its networks, and never unspecified or multicast; and
// never an address this process listens on.
func TestRefusal(t *testing.T) {
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	self := newSelfMatcher([]netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:9901"), // admin
		netip.MustParseAddrPort("[::]:8080"),      // l7 on every address
	}).has
	for _, tc := range []struct {
		desc  string
		ip    string
		port  int
		allow []netip.Prefix
		want  string // a part of the refusal; "" when admitted
	}{
		{desc: "a private address by default", ip: "10.1.2.3", port: 80},
		{desc: "a public IPv6 address by default", ip: "2001:db8::1", port: 80},
		{desc: "loopback by default", ip: "127.0.0.1", port: 80, want: "default allow"},
		{desc: "another loopback by default", ip: "127.8.9.10", port: 80, want: "default allow"},
		{desc: "IPv6 loopback by default", ip: "::1", port: 80, want: "default allow"},
		{desc: "mapped loopback by default", ip: "::ffff:127.0.0.1", port: 80, want: "default allow"},
		{desc: "cloud metadata by default", ip: "169.254.169.254", port: 80, want: "default allow"},
		{desc: "IPv6 link-local by default", ip: "fe80::1", port: 80, want: "default allow"},
		{desc: "unspecified by default", ip: "0.0.0.0", port: 80, want: "never a backend"},
		{desc: "not an IP", ip: "localhost", port: 80, want: "not an IP"},
		{desc: "no port", ip: "10.1.2.3", port: 0, want: "port"},
		{desc: "loopback allowed", ip: "127.0.0.1", port: 80, allow: loop},
		{desc: "outside the allow list", ip: "10.1.2.3", port: 80, allow: loop, want: "outside pools[].registry.allow"},
		{desc: "unspecified whatever allow says", ip: "0.0.0.0", port: 80, allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, want: "never a backend"},
		{desc: "multicast whatever allow says", ip: "224.0.0.1", port: 80, allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, want: "never a backend"},
		{desc: "the admin listener", ip: "127.0.0.1", port: 9901, allow: loop, want: "listener of this process"},
		{desc: "the admin listener, mapped", ip: "::ffff:127.0.0.1", port: 9901, allow: loop, want: "listener of this process"},
		{desc: "a wildcard listener's port on loopback", ip: "127.0.0.2", port: 8080, allow: loop, want: "listener of this process"},
		{desc: "another loopback port", ip: "127.0.0.1", port: 9902, allow: loop},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got := Refusal(client.Instance{IP: tc.ip, Port: tc.port}, tc.allow, self)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("Refusal(%s:%d) = %q, want %q", tc.ip, tc.port, got, tc.want)
			}
		})
	}
}

// A listener on every address is reached at each of the machine's own
// addresses too, which the default allow list admits.
func TestRefusalWildcardListenerOnOwnAddress(t *testing.T) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var own netip.Addr
	for _, a := range as {
		if pn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(pn.IP); ok && !ip.Unmap().IsLoopback() && !ip.IsLinkLocalUnicast() {
				own = ip.Unmap()
				break
			}
		}
	}
	if !own.IsValid() {
		t.Skip("this machine has no address but loopback and link-local")
	}
	self := newSelfMatcher([]netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:8080")}).has
	if got := Refusal(client.Instance{IP: own.String(), Port: 8080}, nil, self); !strings.Contains(got, "listener of this process") {
		t.Errorf("Refusal(%s:8080) with a listener on 0.0.0.0:8080 = %q, want a listener of this process", own, got)
	}
	if got := Refusal(client.Instance{IP: own.String(), Port: 8081}, nil, self); got != "" {
		t.Errorf("Refusal(%s:8081) = %q, want admitted", own, got)
	}
}

// pools[].registry.token_file: a world-readable file is refused with an
// error naming it; a private one is read.
func TestTokenFile(t *testing.T) {
	pool := newPool(t, "app")
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{{0o644, "world-readable"}, {0o600, ""}} {
		p := testnet.WriteMode(t, filepath.Join(t.TempDir(), "token"), "ns-token\n", tc.mode)
		cfg := config.PoolRegistry{Servers: []string{"127.0.0.1:1"}, Namespace: "public", Group: "DEFAULT_GROUP", Service: "s", TokenFile: p}
		prov, err := Start(pool, cfg, Options{Logger: quiet})
		if tc.want == "" {
			if err != nil {
				t.Fatalf("mode %04o: %v", tc.mode, err)
			}
			prov.Stop()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "token_file") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mode %04o: err = %v, want one naming token_file and %q", tc.mode, err, tc.want)
			if prov != nil {
				prov.Stop()
			}
		}
	}
}
