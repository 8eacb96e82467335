package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// The l7 listener's protocol and observability settings: TLS, HTTP/2,
// PROXY protocol, forwarded headers and the access log; and the pools'
// protocol toward their backends.

// Defaults of the l7 listener settings.
const (
	DefaultProxyProtocolTimeout = Duration(5 * time.Second)
	DefaultAccessLogPath        = "stderr"
	DefaultAccessLogFormat      = "combined"
	DefaultPoolProtocol         = "http1"
)

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	// Certificates are served by SNI: the first whose names match the
	// client's server name, else the first one. At least one is needed.
	Certificates []Certificate `yaml:"certificates"`
}

// Certificate is one certificate chain and its private key, both PEM
// files. They are read again on every reload and when either file
// changes.
type Certificate struct {
	// CertFile is the PEM certificate chain, leaf first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key.
	KeyFile string `yaml:"key_file"`
}

// ProxyProtocol accepts PROXY protocol headers (v1 and v2).
type ProxyProtocol struct {
	// Allow lists the CIDRs (or addresses) that must send a PROXY header;
	// a connection from anywhere else that sends one is refused.
	Allow []string `yaml:"allow"`
	// Timeout bounds reading the header (default 5s).
	Timeout Duration `yaml:"timeout"`
}

// AccessLog writes one line per request.
type AccessLog struct {
	// Path is a file to append to, or stderr or stdout (default stderr).
	Path string `yaml:"path"`
	// Format is combined (Apache/nginx combined) or json (default
	// combined).
	Format string `yaml:"format"`
}

// ParsePrefix parses a CIDR, or a single address as the prefix holding
// only it.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or address", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// HTTP2Enabled reports whether a TLS listener offers h2 by ALPN.
func (l *Listener) HTTP2Enabled() bool { return l.HTTP2 == nil || *l.HTTP2 }

func init() {
	onDefaults(func(c *Config, absent func(bool, string) bool) {
		for i := range c.Pools {
			if c.Pools[i].Protocol == "" {
				c.Pools[i].Protocol = DefaultPoolProtocol
			}
		}
		if c.L7 == nil {
			return
		}
		for i := range c.L7.Listeners {
			l := &c.L7.Listeners[i]
			lp := fmt.Sprintf("l7.listeners[%d]", i)
			if l.HTTP2 == nil {
				l.HTTP2 = ptr(true)
			}
			if pp := l.ProxyProtocol; pp != nil && absent(pp.Timeout == 0, lp+".proxy_protocol.timeout") {
				pp.Timeout = DefaultProxyProtocolTimeout
			}
			if al := l.AccessLog; al != nil {
				if al.Path == "" {
					al.Path = DefaultAccessLogPath
				}
				if al.Format == "" {
					al.Format = DefaultAccessLogFormat
				}
			}
		}
	})
	onValidate(func(v *validator, _ map[string]bool) {
		for i := range v.c.Pools {
			switch p := v.c.Pools[i].Protocol; p {
			case "", "http1", "h2", "h2c":
			default:
				v.errorf(fmt.Sprintf("pools[%d].protocol", i), "must be http1, h2 or h2c, got %q", p)
			}
		}
		if v.c.L7 == nil {
			return
		}
		for i := range v.c.L7.Listeners {
			v.listenerProtocols(fmt.Sprintf("l7.listeners[%d]", i), &v.c.L7.Listeners[i])
		}
	})
}

// listenerProtocols checks a listener's TLS, HTTP/2, PROXY protocol,
// forwarding and access log settings.
func (v *validator) listenerProtocols(lp string, l *Listener) {
	if t := l.TLS; t != nil {
		if len(t.Certificates) == 0 {
			v.errorf(lp+".tls.certificates", "tls needs at least one certificate")
		}
		for j, c := range t.Certificates {
			cp := fmt.Sprintf("%s.tls.certificates[%d]", lp, j)
			if c.CertFile == "" {
				v.errorf(cp+".cert_file", "cert_file is required")
			}
			if c.KeyFile == "" {
				v.errorf(cp+".key_file", "key_file is required")
			}
		}
		if l.H2C {
			v.errorf(lp+".h2c", "h2c is cleartext HTTP/2 and cannot be used with tls; HTTP/2 over TLS is http2")
		}
	}
	if pp := l.ProxyProtocol; pp != nil {
		if len(pp.Allow) == 0 {
			v.errorf(lp+".proxy_protocol.allow", "list the sources that send PROXY headers (CIDRs or addresses)")
		}
		for j, s := range pp.Allow {
			if _, err := ParsePrefix(s); err != nil {
				v.errorf(fmt.Sprintf("%s.proxy_protocol.allow[%d]", lp, j), "%v", err)
			}
		}
		if pp.Timeout <= 0 {
			v.errorf(lp+".proxy_protocol.timeout", "must be positive, got %s", pp.Timeout)
		}
	}
	for j, s := range l.TrustedProxies {
		if _, err := ParsePrefix(s); err != nil {
			v.errorf(fmt.Sprintf("%s.trusted_proxies[%d]", lp, j), "%v", err)
		}
	}
	if al := l.AccessLog; al != nil {
		switch al.Format {
		case "", "combined", "json":
		default:
			v.errorf(lp+".access_log.format", "must be combined or json, got %q", al.Format)
		}
		if strings.ContainsAny(al.Path, "\x00") {
			v.errorf(lp+".access_log.path", "%q is not a path", al.Path)
		}
	}
}
