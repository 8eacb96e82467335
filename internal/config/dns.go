package config

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/strata-lb/strata/internal/config/known"
)

// DNS is the authoritative DNS role: zones of static records and
// load-balanced names that answer with the healthy addresses of pools.
type DNS struct {
	// Listen are the addresses served over both UDP and TCP.
	Listen []string `yaml:"listen"`
	// UDPSockets is how many UDP sockets share each address with
	// SO_REUSEPORT (default: the number of CPUs).
	UDPSockets int `yaml:"udp_sockets"`
	// MaxUDPSize is the largest UDP response sent, whatever the client's
	// EDNS buffer says (default 1232).
	MaxUDPSize int `yaml:"max_udp_size"`
	// TCPMaxConns bounds open TCP connections per address (default 256).
	TCPMaxConns int `yaml:"tcp_max_conns"`
	// TCPIdleTimeout closes a TCP connection that sends nothing for this
	// long (default 10s).
	TCPIdleTimeout Duration `yaml:"tcp_idle_timeout"`
	// RRL is response rate limiting per client subnet; off when absent.
	RRL *RRL `yaml:"rrl"`
	// Views name client subnets that load-balanced names may answer
	// differently.
	Views []DNSView `yaml:"views"`
	// Zones are the zones served authoritatively.
	Zones []Zone `yaml:"zones"`
	// TSIGKeys are the keys zone transfers may require.
	TSIGKeys []TSIGKey `yaml:"tsig_keys"`
	// Registry answers <service>.<group>.<namespace>.svc.<domain> from
	// the service registry; off when absent.
	Registry *DNSRegistry `yaml:"registry"`
}

// DNSRegistry is the DNS interface of the service registry.
type DNSRegistry struct {
	// Domain is the name the registry is served under (required).
	Domain string `yaml:"domain"`
	// TTL of the answers (default 5s).
	TTL Duration `yaml:"ttl"`
	// Count is how many addresses one A or AAAA answer holds, chosen by
	// weight; 0 answers every address, rotated.
	Count int `yaml:"count"`
	// Namespaces are the namespaces answered (default: public). DNS
	// carries no token, so each one is an explicit choice.
	Namespaces []string `yaml:"namespaces"`
	// Servers are the HTTP addresses of a registry in other processes;
	// empty reads the registry role of this process.
	Servers []string `yaml:"servers"`
	// Token is the access token sent to Servers for the namespaces.
	// Secrets stay out of JSON renderings of the config.
	Token string `yaml:"token" json:"-"`
	// TokenFile reads Token from a file that is not world-readable.
	TokenFile string `yaml:"token_file"`
}

// TSIGKey is a shared secret for signed zone transfers (RFC 8945).
type TSIGKey struct {
	// Name is the key's name, as secondaries know it.
	Name string `yaml:"name"`
	// Algorithm is hmac-sha256 (default), hmac-sha512, hmac-sha384,
	// hmac-sha224 or hmac-sha1.
	Algorithm string `yaml:"algorithm"`
	// Secret is the key in base64. Secrets stay out of JSON renderings
	// of the config.
	Secret string `yaml:"secret" json:"-"`
	// SecretFile reads Secret from a file that is not world-readable.
	SecretFile string `yaml:"secret_file"`
}

// Transfer lets secondaries copy a zone with AXFR.
type Transfer struct {
	// Allow are the CIDR prefixes of the secondaries.
	Allow []string `yaml:"allow"`
	// Key names the TSIG key transfers must be signed with; unsigned
	// transfers are refused when set.
	Key string `yaml:"key"`
}

// RRL configures response rate limiting.
type RRL struct {
	// ResponsesPerSecond each client subnet may receive (required, > 0).
	ResponsesPerSecond int `yaml:"responses_per_second"`
	// Burst is how many responses a quiet subnet may receive at once
	// (default: responses_per_second).
	Burst int `yaml:"burst"`
	// Slip answers every Nth limited query with a truncated response
	// instead of silence (default 2; 0 never slips).
	Slip *int `yaml:"slip"`
	// IPv4Prefix is the subnet length clients are grouped by (default 24).
	IPv4Prefix int `yaml:"ipv4_prefix"`
	// IPv6Prefix is the subnet length clients are grouped by (default 56).
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// DNSView names a set of client subnets.
type DNSView struct {
	// Name is how load-balanced names refer to the view.
	Name string `yaml:"name"`
	// Subnets are CIDR prefixes matched against the EDNS client subnet,
	// or the resolver's address when the query carries none.
	Subnets []string `yaml:"subnets"`
}

// Zone is one zone served authoritatively.
type Zone struct {
	// Name is the zone's apex, such as example.com.
	Name string `yaml:"name"`
	// File is an RFC 1035 master file with the zone's records.
	File string `yaml:"file"`
	// TTL is the TTL of records that do not give one (default 1h).
	TTL Duration `yaml:"ttl"`
	// Records are master-file lines relative to the zone.
	Records []string `yaml:"records"`
	// Balanced are the zone's load-balanced names.
	Balanced []Balanced `yaml:"balanced"`
	// Transfer offers the zone to secondaries over AXFR; off when absent.
	Transfer *Transfer `yaml:"transfer"`
}

// Balanced is a name whose answers come from pools, by weight and health.
type Balanced struct {
	// Name is relative to the zone; "@" is the apex.
	Name string `yaml:"name"`
	// TTL of the answers (default 30s).
	TTL Duration `yaml:"ttl"`
	// Count is how many addresses one answer holds, chosen by weight;
	// 0 answers every healthy address, rotated.
	Count int `yaml:"count"`
	// Pool is shorthand for one group with that pool.
	Pool string `yaml:"pool"`
	// Groups are failover groups, tried in order.
	Groups []BalancedGroup `yaml:"groups"`
	// Views answer clients of a view from other groups.
	Views []BalancedView `yaml:"views"`
	// Fallback addresses answer when every address is down; when empty
	// every address is answered (fail open).
	Fallback []string `yaml:"fallback"`
}

// BalancedGroup is one failover group.
type BalancedGroup struct {
	// Pool names the pool whose backends' hosts are the addresses.
	Pool string `yaml:"pool"`
	// MinHealthy is how many healthy addresses the group needs to be
	// used (default 1).
	MinHealthy int `yaml:"min_healthy"`
}

// BalancedView answers the clients of one view.
type BalancedView struct {
	// View names an entry of dns.views.
	View string `yaml:"view"`
	// Pool is shorthand for one group with that pool.
	Pool string `yaml:"pool"`
	// Groups are this view's failover groups.
	Groups []BalancedGroup `yaml:"groups"`
}

// DNS defaults, named so the docs and the code can be checked against each
// other.
const (
	DefaultDNSListen         = "127.0.0.1:53"
	DefaultDNSMaxUDPSize     = 1232
	DefaultDNSTCPMaxConns    = 256
	DefaultDNSTCPIdleTimeout = Duration(10 * time.Second)
	DefaultZoneTTL           = Duration(time.Hour)
	DefaultBalancedTTL       = Duration(30 * time.Second)
	DefaultMinHealthy        = 1
	DefaultRRLSlip           = 2
	DefaultRRLIPv4Prefix     = 24
	DefaultRRLIPv6Prefix     = 56
	DefaultTSIGAlgorithm     = "hmac-sha256"
	DefaultDNSRegistryTTL    = Duration(5 * time.Second)
	DefaultDNSRegistryNS     = "public"
)

// TSIGAlgorithms are the TSIG algorithms accepted, by config name, with
// their names on the wire (RFC 8945; miekg/dns's Hmac constants, which a
// test in internal/dnslb compares them with).
var TSIGAlgorithms = map[string]string{
	"hmac-sha256": "hmac-sha256.", "hmac-sha512": "hmac-sha512.", "hmac-sha384": "hmac-sha384.",
	"hmac-sha224": "hmac-sha224.", "hmac-sha1": "hmac-sha1.",
}

func init() {
	onDefaults(dnsDefaults)
	onValidate(dnsValidate)
}

func dnsDefaults(c *Config, absent func(isZero bool, path string) bool) {
	d := c.DNS
	if d == nil {
		return
	}
	if len(d.Listen) == 0 {
		d.Listen = []string{DefaultDNSListen}
	}
	if absent(d.MaxUDPSize == 0, "dns.max_udp_size") {
		d.MaxUDPSize = DefaultDNSMaxUDPSize
	}
	if absent(d.TCPMaxConns == 0, "dns.tcp_max_conns") {
		d.TCPMaxConns = DefaultDNSTCPMaxConns
	}
	if absent(d.TCPIdleTimeout == 0, "dns.tcp_idle_timeout") {
		d.TCPIdleTimeout = DefaultDNSTCPIdleTimeout
	}
	if r := d.RRL; r != nil {
		if absent(r.Burst == 0, "dns.rrl.burst") {
			r.Burst = r.ResponsesPerSecond
		}
		if r.Slip == nil {
			r.Slip = ptr(DefaultRRLSlip)
		}
		if absent(r.IPv4Prefix == 0, "dns.rrl.ipv4_prefix") {
			r.IPv4Prefix = DefaultRRLIPv4Prefix
		}
		if absent(r.IPv6Prefix == 0, "dns.rrl.ipv6_prefix") {
			r.IPv6Prefix = DefaultRRLIPv6Prefix
		}
	}
	if r := d.Registry; r != nil {
		if absent(r.TTL == 0, "dns.registry.ttl") {
			r.TTL = DefaultDNSRegistryTTL
		}
		if len(r.Namespaces) == 0 {
			r.Namespaces = []string{DefaultDNSRegistryNS}
		}
	}
	for i := range d.TSIGKeys {
		if d.TSIGKeys[i].Algorithm == "" {
			d.TSIGKeys[i].Algorithm = DefaultTSIGAlgorithm
		}
	}
	groups := func(gs []BalancedGroup, path string) {
		for k := range gs {
			if absent(gs[k].MinHealthy == 0, fmt.Sprintf("%s[%d].min_healthy", path, k)) {
				gs[k].MinHealthy = DefaultMinHealthy
			}
		}
	}
	for i := range d.Zones {
		z := &d.Zones[i]
		zp := fmt.Sprintf("dns.zones[%d]", i)
		if absent(z.TTL == 0, zp+".ttl") {
			z.TTL = DefaultZoneTTL
		}
		for j := range z.Balanced {
			b := &z.Balanced[j]
			bp := fmt.Sprintf("%s.balanced[%d]", zp, j)
			if absent(b.TTL == 0, bp+".ttl") {
				b.TTL = DefaultBalancedTTL
			}
			if b.Pool != "" && len(b.Groups) == 0 {
				b.Groups = []BalancedGroup{{Pool: b.Pool}}
			}
			groups(b.Groups, bp+".groups")
			for k := range b.Views {
				vw := &b.Views[k]
				if vw.Pool != "" && len(vw.Groups) == 0 {
					vw.Groups = []BalancedGroup{{Pool: vw.Pool}}
				}
				groups(vw.Groups, fmt.Sprintf("%s.views[%d].groups", bp, k))
			}
		}
	}
}

func dnsValidate(v *validator, pools map[string]bool) {
	syn := known.DNSSyntax() // names, types and records: see internal/dnssyntax
	d := v.c.DNS
	if d == nil {
		return
	}
	if len(d.Zones) == 0 && d.Registry == nil {
		v.errorf("dns.zones", "dns needs at least one zone (or a registry section)")
	}
	v.dnsRegistry(d)
	seenListen := map[string]bool{}
	for i, l := range d.Listen {
		lp := fmt.Sprintf("dns.listen[%d]", i)
		if _, ok := v.addr(lp, l, false); ok {
			if seenListen[l] && !strings.HasSuffix(l, ":0") {
				v.errorf(lp, "%q is listed twice", l)
			}
			seenListen[l] = true
		}
	}
	if d.UDPSockets < 0 || d.UDPSockets > 64 {
		v.errorf("dns.udp_sockets", "must be from 1 to 64 (or 0 for one per CPU), got %d", d.UDPSockets)
	}
	if d.MaxUDPSize < 512 || d.MaxUDPSize > 65535 {
		v.errorf("dns.max_udp_size", "must be from 512 to 65535, got %d", d.MaxUDPSize)
	}
	if d.TCPMaxConns < 1 {
		v.errorf("dns.tcp_max_conns", "must be at least 1, got %d", d.TCPMaxConns)
	}
	if d.TCPIdleTimeout <= 0 {
		v.errorf("dns.tcp_idle_timeout", "must be positive, got %s", d.TCPIdleTimeout)
	}
	if r := d.RRL; r != nil {
		if r.ResponsesPerSecond < 1 {
			v.errorf("dns.rrl.responses_per_second", "must be at least 1, got %d", r.ResponsesPerSecond)
		}
		if r.Burst < 1 {
			v.errorf("dns.rrl.burst", "must be at least 1, got %d", r.Burst)
		}
		if r.Slip != nil && (*r.Slip < 0 || *r.Slip > 10) {
			v.errorf("dns.rrl.slip", "must be from 0 to 10, got %d", *r.Slip)
		}
		if r.IPv4Prefix < 1 || r.IPv4Prefix > 32 {
			v.errorf("dns.rrl.ipv4_prefix", "must be from 1 to 32, got %d", r.IPv4Prefix)
		}
		if r.IPv6Prefix < 1 || r.IPv6Prefix > 128 {
			v.errorf("dns.rrl.ipv6_prefix", "must be from 1 to 128, got %d", r.IPv6Prefix)
		}
	}
	views := map[string]bool{}
	for i, vw := range d.Views {
		vp := fmt.Sprintf("dns.views[%d]", i)
		switch {
		case vw.Name == "":
			v.errorf(vp+".name", "view name is required")
		case views[vw.Name]:
			v.errorf(vp+".name", "duplicate view name %q", vw.Name)
		}
		views[vw.Name] = true
		if len(vw.Subnets) == 0 {
			v.errorf(vp+".subnets", "a view needs at least one subnet")
		}
		for j, s := range vw.Subnets {
			if _, err := netip.ParsePrefix(s); err != nil {
				v.errorf(fmt.Sprintf("%s.subnets[%d]", vp, j), "%q is not a CIDR prefix like 192.0.2.0/24", s)
			}
		}
	}
	keys := map[string]bool{}
	for i, k := range d.TSIGKeys {
		kp := fmt.Sprintf("dns.tsig_keys[%d]", i)
		name := strings.ToLower(syn.Fqdn(k.Name))
		if !syn.IsDomainName(k.Name) || k.Name == "" {
			v.errorf(kp+".name", "%q is not a key name (a domain name such as xfr-key)", k.Name)
		} else if keys[name] {
			v.errorf(kp+".name", "duplicate key name %q", k.Name)
		}
		keys[name] = true
		if _, ok := TSIGAlgorithms[k.Algorithm]; !ok {
			v.errorf(kp+".algorithm", "unknown algorithm %q (want hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha224 or hmac-sha1)", k.Algorithm)
		}
		switch {
		case k.Secret != "" && k.SecretFile != "":
			v.errorf(kp+".secret_file", "set secret or secret_file, not both")
		case k.SecretFile != "":
			// The file is read, and its key checked, when the role
			// starts and on every reload (CheckTSIGSecret).
		default:
			if err := CheckTSIGSecret(k.Secret); err != nil {
				v.errorf(kp+".secret", "%v", err)
			}
		}
	}
	zones := map[string]bool{}
	for i := range d.Zones {
		z := &d.Zones[i]
		zp := fmt.Sprintf("dns.zones[%d]", i)
		fq := strings.ToLower(syn.Fqdn(z.Name))
		if !syn.IsDomainName(z.Name) || z.Name == "" {
			v.errorf(zp+".name", "%q is not a domain name", z.Name)
		} else if zones[fq] {
			v.errorf(zp+".name", "zone %q is configured twice", z.Name)
		}
		zones[fq] = true
		if z.TTL < Duration(time.Second) {
			v.errorf(zp+".ttl", "must be at least 1s, got %s", z.TTL)
		}
		// Records are parsed here so a typo is reported at its line, not
		// when the DNS role starts; zone files are read by the role, whose
		// errors name the file and its line.
		for j, r := range z.Records {
			if err := syn.CheckRecord(fq, r); err != nil {
				v.errorf(fmt.Sprintf("%s.records[%d]", zp, j), "%v", err)
			}
		}
		if x := z.Transfer; x != nil {
			if len(x.Allow) == 0 {
				v.errorf(zp+".transfer.allow", "list the secondaries' prefixes (transfers are refused to everyone else)")
			}
			for j, a := range x.Allow {
				if _, err := netip.ParsePrefix(a); err != nil {
					v.errorf(fmt.Sprintf("%s.transfer.allow[%d]", zp, j), "%q is not a CIDR prefix like 192.0.2.53/32", a)
				}
			}
			if x.Key != "" && !keys[strings.ToLower(syn.Fqdn(x.Key))] {
				v.errorf(zp+".transfer.key", "no key named %q in dns.tsig_keys", x.Key)
			}
		}
		names := map[string]bool{}
		for j := range z.Balanced {
			b := &z.Balanced[j]
			bp := fmt.Sprintf("%s.balanced[%d]", zp, j)
			n := strings.ToLower(b.Name)
			if b.Name == "" {
				v.errorf(bp+".name", "name is required (relative to the zone; @ for the apex)")
			} else if !syn.IsDomainName(b.Name) || strings.HasSuffix(b.Name, ".") {
				v.errorf(bp+".name", "%q is not a name relative to the zone (write www, not www.%s)", b.Name, z.Name)
			} else if names[n] {
				v.errorf(bp+".name", "duplicate balanced name %q", b.Name)
			}
			names[n] = true
			if b.TTL < 0 || b.TTL > Duration(24*time.Hour) {
				v.errorf(bp+".ttl", "must be from 0s to 24h, got %s", b.TTL)
			}
			if b.Count < 0 {
				v.errorf(bp+".count", "must not be negative, got %d", b.Count)
			}
			if b.Pool != "" && len(b.Groups) > 0 && !(len(b.Groups) == 1 && b.Groups[0].Pool == b.Pool) {
				v.errorf(bp+".pool", "set pool or groups, not both")
			}
			if len(b.Groups) == 0 {
				v.errorf(bp+".groups", "a balanced name needs a pool or groups")
			}
			v.dnsGroups(bp+".groups", b.Groups, pools)
			for k, vw := range b.Views {
				vp := fmt.Sprintf("%s.views[%d]", bp, k)
				if !views[vw.View] {
					v.errorf(vp+".view", "no view named %q in dns.views", vw.View)
				}
				if len(vw.Groups) == 0 {
					v.errorf(vp+".groups", "a view needs a pool or groups")
				}
				v.dnsGroups(vp+".groups", vw.Groups, pools)
			}
			for k, a := range b.Fallback {
				if _, err := netip.ParseAddr(a); err != nil {
					v.errorf(fmt.Sprintf("%s.fallback[%d]", bp, k), "%q is not an IP address", a)
				}
			}
		}
	}
}

// dnsRegistry checks dns.registry: a domain, and a registry to read (the
// role of this process or servers).
func (v *validator) dnsRegistry(d *DNS) {
	syn := known.DNSSyntax()
	r := d.Registry
	if r == nil {
		return
	}
	const p = "dns.registry"
	dom := strings.ToLower(syn.Fqdn(r.Domain))
	if !syn.IsDomainName(r.Domain) || r.Domain == "" || dom == "." || len(dom) > 200 {
		v.errorf(p+".domain", "%q is not a domain name such as svc.example.test (at most 200 bytes)", r.Domain)
	}
	for i := range d.Zones {
		if z := strings.ToLower(syn.Fqdn(d.Zones[i].Name)); syn.IsSubDomain("svc."+dom, z) {
			v.errorf(fmt.Sprintf("dns.zones[%d].name", i), "zone %s lies under svc.%s, which dns.registry answers", z, dom)
		}
	}
	if r.TTL < 0 || r.TTL > Duration(time.Hour) {
		v.errorf(p+".ttl", "must be from 0s to 1h, got %s", r.TTL)
	}
	if r.Count < 0 {
		v.errorf(p+".count", "must not be negative, got %d", r.Count)
	}
	seen := map[string]bool{}
	for i, ns := range r.Namespaces {
		np := fmt.Sprintf("%s.namespaces[%d]", p, i)
		switch {
		case ns == "" || len(ns) > 63 || strings.ContainsAny(ns, "/\x00"):
			v.errorf(np, "%q is not a namespace (1 to 63 bytes, no '/')", ns)
		case seen[strings.ToLower(ns)]:
			v.errorf(np, "namespace %q is listed twice (names are matched case-insensitively)", ns)
		}
		seen[strings.ToLower(ns)] = true
	}
	for i, s := range r.Servers {
		v.addr(fmt.Sprintf("%s.servers[%d]", p, i), s, true)
	}
	if r.Token != "" && r.TokenFile != "" {
		v.errorf(p+".token_file", "set token or token_file, not both")
	}
	if len(r.Servers) == 0 {
		if v.c.Registry == nil {
			v.errorf(p+".servers", "no registry to answer from: add a registry section to run one in this process, or list the servers of one")
		}
		if r.Token != "" || r.TokenFile != "" {
			v.errorf(p+".token", "a token is sent to servers; the registry of this process needs none")
		}
	}
}

func (v *validator) dnsGroups(path string, gs []BalancedGroup, pools map[string]bool) {
	for k, g := range gs {
		gp := fmt.Sprintf("%s[%d]", path, k)
		switch {
		case g.Pool == "":
			v.errorf(gp+".pool", "pool is required")
		case !pools[g.Pool]:
			v.errorf(gp+".pool", "no pool named %q (have %s)", g.Pool, poolList(pools))
		}
		if g.MinHealthy < 1 {
			v.errorf(gp+".min_healthy", "must be at least 1, got %d", g.MinHealthy)
		}
	}
}

// CheckTSIGSecret checks a TSIG key: at least 16 bytes, in base64.
func CheckTSIGSecret(secret string) error {
	if b, err := base64.StdEncoding.DecodeString(secret); err != nil || len(b) < 16 {
		return fmt.Errorf("must be at least 16 bytes in base64 (for example from: openssl rand -base64 32)")
	}
	return nil
}
