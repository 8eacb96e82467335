package l7

import (
	"fmt"
	"strings"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// route is one compiled config.Route. Host patterns are lower-cased once
// here so that matching a request needs no allocation.
type route struct {
	anyHost bool
	exact   string // lower-case host, when not a wildcard
	suffix  string // ".example.com" for "*.example.com"
	prefix  string
	pool    *upstream.Pool
}

// routeTable is the immutable routing table of one listener. Apply builds
// a new one and swaps it in; requests load whichever is current.
type routeTable struct {
	routes []route
}

// match returns the first route whose host and path prefix match, or nil.
// host may carry a port and any letter case.
func (t *routeTable) match(host, path string) *route {
	host = normalizeHost(host)
	for i := range t.routes {
		rt := &t.routes[i]
		if !rt.matchHost(host) || !strings.HasPrefix(path, rt.prefix) {
			continue
		}
		return rt
	}
	return nil
}

func (rt *route) matchHost(host string) bool {
	switch {
	case rt.anyHost:
		return true
	case rt.suffix != "":
		return len(host) > len(rt.suffix) && strings.EqualFold(host[len(host)-len(rt.suffix):], rt.suffix)
	default:
		return strings.EqualFold(host, rt.exact)
	}
}

// normalizeHost strips the port, IPv6 brackets and a trailing dot from a
// Host header without allocating; letter case is left to the comparison.
func normalizeHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

// buildTable compiles and validates one listener's routes.
func buildTable(ln *config.Listener, pools map[string]*upstream.Pool) (*routeTable, error) {
	t := &routeTable{routes: make([]route, 0, len(ln.Routes))}
	for i, r := range ln.Routes {
		where := fmt.Sprintf("listener %q route %d", listenerName(ln), i+1)
		p, ok := pools[r.Pool]
		if !ok || p == nil {
			return nil, fmt.Errorf("%s: unknown pool %q", where, r.Pool)
		}
		rt := route{pool: p, prefix: r.PathPrefix}
		if rt.prefix == "" {
			rt.prefix = "/"
		}
		if !strings.HasPrefix(rt.prefix, "/") {
			return nil, fmt.Errorf("%s: path_prefix %q must start with /", where, r.PathPrefix)
		}
		host := strings.ToLower(normalizeHost(strings.TrimSpace(r.Host)))
		switch {
		case host == "" || host == "*":
			rt.anyHost = true
		case strings.HasPrefix(host, "*."):
			rt.suffix = host[1:]
			if len(rt.suffix) < 2 || strings.Contains(rt.suffix, "*") {
				return nil, fmt.Errorf("%s: invalid host pattern %q", where, r.Host)
			}
		case strings.Contains(host, "*"):
			return nil, fmt.Errorf("%s: invalid host pattern %q (a wildcard must be the whole first label, as in *.example.com)", where, r.Host)
		default:
			rt.exact = host
		}
		t.routes = append(t.routes, rt)
	}
	return t, nil
}

func listenerName(ln *config.Listener) string {
	if ln.Name != "" {
		return ln.Name
	}
	return ln.Listen
}
