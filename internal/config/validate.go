package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/strata-lb/strata/internal/config/known"
)

// HealthTypes are the active health check protocols, in the order the docs
// list them.
var HealthTypes = []string{"tcp", "http", "https", "udp", "dns", "exec"}

// Validate is stage three: it checks a Config after ApplyDefaults and
// returns every problem it finds, joined with errors.Join, each an *Error
// citing file:line and the field path. It returns nil for a good config.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.admin()
	v.log()
	if c.ShutdownTimeout < 0 {
		v.errorf("shutdown_timeout", "must not be negative, got %s", c.ShutdownTimeout)
	}
	if c.ShutdownDelay < 0 {
		v.errorf("shutdown_delay", "must not be negative, got %s", c.ShutdownDelay)
	}
	pools := v.pools()
	v.l7(pools)
	for _, f := range sectionValidators {
		f(v, pools)
	}
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, v.c.Errorf(path, format, args...))
}

// line returns the line of path for "first at line N" notes.
func (v *validator) line(path string) int { return v.c.pos.Line(path) }

func (v *validator) admin() {
	a := v.c.Admin
	if a.Token != "" && a.TokenFile != "" {
		v.errorf("admin.token_file", "set token or token_file, not both")
	}
	if a.Listen == "off" {
		return
	}
	host, ok := v.addr("admin.listen", a.Listen, false)
	if !ok {
		return
	}
	// Secure by default: the admin API can drain backends and change
	// weights, so leaving loopback needs a token.
	if !isLoopback(host) && a.Token == "" && a.TokenFile == "" {
		v.errorf("admin.listen", "%q is not a loopback address, so admin.token or admin.token_file is required", a.Listen)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (v *validator) log() {
	switch v.c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errorf("log.level", "unknown level %q (want debug, info, warn or error)", v.c.Log.Level)
	}
	switch v.c.Log.Format {
	case "text", "json":
	default:
		v.errorf("log.format", "unknown format %q (want text or json)", v.c.Log.Format)
	}
}

// addr checks that s is host:port with a numeric port in 1-65535 and
// returns the host. A listen address may leave the host empty (every
// interface) and may ask for port 0 (any free port, which tests and
// embedded uses read back from the listener); a backend address may not.
func (v *validator) addr(path, s string, needHost bool) (string, bool) {
	if s == "" {
		v.errorf(path, "address is required (host:port)")
		return "", false
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errorf(path, "%q is not host:port", s)
		return "", false
	}
	lowest := 1
	if !needHost {
		lowest = 0
	}
	if n, err := strconv.Atoi(port); err != nil || n < lowest || n > 65535 {
		v.errorf(path, "%q: port must be a number from %d to 65535", s, lowest)
		return "", false
	}
	if needHost && host == "" {
		v.errorf(path, "%q: host is required", s)
		return "", false
	}
	return host, true
}

// pools checks every pool and returns the set of pool names for routes.
func (v *validator) pools() map[string]bool {
	names := map[string]bool{}
	first := map[string]string{}
	for i := range v.c.Pools {
		p := &v.c.Pools[i]
		pp := fmt.Sprintf("pools[%d]", i)
		switch prev, dup := first[p.Name]; {
		case p.Name == "":
			v.errorf(pp+".name", "pool name is required")
		case dup:
			v.errorf(pp+".name", "duplicate pool name %q (first at line %d)", p.Name, v.line(prev))
		default:
			first[p.Name] = pp + ".name"
			names[p.Name] = true
		}
		if err := known.Algorithm(p.LB); err != nil {
			v.errorf(pp+".lb", "%v", err)
		}
		if p.SlowStart < 0 {
			v.errorf(pp+".slow_start", "must not be negative, got %s", p.SlowStart)
		}
		v.backends(pp, p.Backends)
		if p.Health != nil {
			v.health(pp+".health", p.Health)
		}
		if p.Passive != nil {
			v.passive(pp+".passive", p.Passive)
		}
	}
	return names
}

func (v *validator) backends(pp string, bs []Backend) {
	first := map[string]string{}
	for j := range bs {
		b := &bs[j]
		bp := fmt.Sprintf("%s.backends[%d]", pp, j)
		v.addr(bp+".address", b.Address, true)
		if prev, dup := first[b.Name]; dup {
			v.errorf(bp+".name", "duplicate backend name %q in this pool (first at line %d)", b.Name, v.line(prev))
		} else {
			// Cite the name if written, else the address it came from.
			if v.c.pos.Has(bp + ".name") {
				first[b.Name] = bp + ".name"
			} else {
				first[b.Name] = bp + ".address"
			}
		}
		if b.Weight != nil && *b.Weight < 0 {
			v.errorf(bp+".weight", "must not be negative, got %d", *b.Weight)
		}
		if err := known.BackendState(b.State); err != nil {
			v.errorf(bp+".state", "%v", err)
		}
	}
}

func (v *validator) health(hp string, h *HealthCheck) {
	typeKnown := false
	for _, t := range HealthTypes {
		typeKnown = typeKnown || h.Type == t
	}
	if !typeKnown {
		if h.Type == "" {
			v.errorf(hp+".type", "type is required (want %s)", strings.Join(HealthTypes, ", "))
		} else {
			v.errorf(hp+".type", "unknown type %q (want %s)", h.Type, strings.Join(HealthTypes, ", "))
		}
	}
	if h.Interval <= 0 {
		v.errorf(hp+".interval", "must be positive, got %s", h.Interval)
	}
	switch {
	case h.Timeout <= 0:
		v.errorf(hp+".timeout", "must be positive, got %s", h.Timeout)
	case h.Interval > 0 && h.Timeout >= h.Interval:
		// A check that may outlast its interval would overlap the next one.
		v.errorf(hp+".timeout", "%s must be less than interval (%s)", h.Timeout, h.Interval)
	}
	if h.Jitter != nil && *h.Jitter < 0 {
		v.errorf(hp+".jitter", "must not be negative, got %s", *h.Jitter)
	}
	if h.Rise < 1 {
		v.errorf(hp+".rise", "must be at least 1, got %d", h.Rise)
	}
	if h.Fall < 1 {
		v.errorf(hp+".fall", "must be at least 1, got %d", h.Fall)
	}
	if h.Port < 0 || h.Port > 65535 {
		v.errorf(hp+".port", "must be from 1 to 65535 (or 0 for the backend's port), got %d", h.Port)
	}
	switch h.Type {
	case "http", "https":
		if !strings.HasPrefix(h.Path, "/") {
			v.errorf(hp+".path", "%q must start with /", h.Path)
		}
		if _, err := ParseStatusRanges(h.ExpectStatus); err != nil {
			v.errorf(hp+".expect_status", "%v", err)
		}
	case "udp":
		if h.Send == "" {
			v.errorf(hp+".send", "udp checks need a payload to send")
		}
	case "dns":
		if !known.DNSSyntax().IsDomainName(h.Query) {
			v.errorf(hp+".query", "%q is not a domain name", h.Query)
		}
		if !known.DNSSyntax().IsType(h.QueryType) {
			v.errorf(hp+".query_type", "unknown DNS type %q (want a type name like A, AAAA or SRV)", h.QueryType)
		}
	case "exec":
		if len(h.Command) == 0 || h.Command[0] == "" {
			v.errorf(hp+".command", "exec checks need a command")
		}
	}
}

func (v *validator) passive(pp string, p *Passive) {
	if p.MaxFails != nil && *p.MaxFails < 0 {
		v.errorf(pp+".max_fails", "must not be negative, got %d", *p.MaxFails)
	}
	if p.BaseEjection <= 0 {
		v.errorf(pp+".base_ejection", "must be positive, got %s", p.BaseEjection)
	}
	if p.MaxEjection < p.BaseEjection {
		v.errorf(pp+".max_ejection", "%s must not be less than base_ejection (%s)", p.MaxEjection, p.BaseEjection)
	}
}

func (v *validator) l7(pools map[string]bool) {
	l7 := v.c.L7
	if l7 == nil {
		return
	}
	if len(l7.Listeners) == 0 {
		v.errorf("l7.listeners", "l7 needs at least one listener")
	}
	names := map[string]string{}
	addrs := map[string]string{}
	for i := range l7.Listeners {
		l := &l7.Listeners[i]
		lp := fmt.Sprintf("l7.listeners[%d]", i)
		if _, ok := v.addr(lp+".listen", l.Listen, false); ok {
			// Port 0 asks the kernel for a free port, so it never collides.
			switch prev, dup := addrs[l.Listen]; {
			case strings.HasSuffix(l.Listen, ":0"):
			case dup:
				v.errorf(lp+".listen", "%q is already used by another listener (line %d)", l.Listen, v.line(prev))
			case l.Listen == v.c.Admin.Listen:
				v.errorf(lp+".listen", "%q is already used by admin.listen", l.Listen)
			default:
				addrs[l.Listen] = lp + ".listen"
			}
		}
		// A name defaulted from a duplicate listen address was reported
		// above; saying it twice would only add noise.
		if prev, dup := names[l.Name]; dup && l.Name != l.Listen {
			v.errorf(lp+".name", "duplicate listener name %q (first at line %d)", l.Name, v.line(prev))
		} else {
			names[l.Name] = lp + ".name"
		}
		if len(l.Routes) == 0 {
			v.errorf(lp+".routes", "a listener needs at least one route")
		}
		if l.HealthPath != "" && !strings.HasPrefix(l.HealthPath, "/") {
			v.errorf(lp+".health_path", "%q must start with /", l.HealthPath)
		}
		for j := range l.Routes {
			v.route(fmt.Sprintf("%s.routes[%d]", lp, j), &l.Routes[j], pools)
		}
	}
}

func poolList(pools map[string]bool) string {
	if len(pools) == 0 {
		return "no pools"
	}
	names := make([]string, 0, len(pools))
	for n := range pools {
		names = append(names, strconv.Quote(n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
