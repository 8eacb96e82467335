package l7

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Routing order, as nginx's server_name and Envoy's virtual hosts have it:
//
//  1. The host picks one group of routes: the routes whose host is the
//     request's host exactly; else those of the longest "*." suffix that
//     matches; else those without a host.
//  2. Within the group, routes are tried in config order and the first
//     whose every condition holds (path prefix, exact path, path regex,
//     method, headers, query) wins.
//  3. A request whose group has no matching route gets 404: it does not
//     fall through to a less specific host, so that adding a host-specific
//     route never silently changes which routes of other hosts apply.
//
// Everything is compiled by Apply; matching allocates nothing unless a
// query parameter needs unescaping.

// hostGroup is the ordered routes of one host pattern.
type hostGroup struct {
	routes []*route
}

type wildGroup struct {
	suffix string // ".example.com", lower case
	group  *hostGroup
}

// find returns the route for r, or nil.
func (t *routeTable) find(r *http.Request) *route {
	g := t.group(r.Host)
	if g == nil {
		return nil
	}
	for _, rt := range g.routes {
		if rt.matches(r) {
			return rt
		}
	}
	return nil
}

// group chooses the host group for a Host header value.
func (t *routeTable) group(host string) *hostGroup {
	host = normalizeHost(host)
	if len(t.exact) > 0 {
		if g := t.exact[lowerNoAlloc(host)]; g != nil {
			return g
		}
	}
	for _, w := range t.wild {
		if len(host) > len(w.suffix) && strings.EqualFold(host[len(host)-len(w.suffix):], w.suffix) {
			return w.group
		}
	}
	return t.any
}

// lowerNoAlloc returns s in lower case; it allocates only when s has an
// upper-case letter, which clients rarely send in Host.
func lowerNoAlloc(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// matches checks every condition of rt but the host.
func (rt *route) matches(r *http.Request) bool {
	p := r.URL.Path
	if !strings.HasPrefix(p, rt.prefix) {
		return false
	}
	if rt.exactPath != "" && p != rt.exactPath {
		return false
	}
	if rt.pathRE != nil && !rt.pathRE.MatchString(p) {
		return false
	}
	if len(rt.methods) > 0 {
		ok := false
		for _, m := range rt.methods {
			if m == r.Method {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range rt.headers {
		if !rt.headers[i].matchValues(r.Header[rt.headers[i].name]) {
			return false
		}
	}
	for i := range rt.query {
		v, ok := queryValue(r.URL.RawQuery, rt.query[i].name)
		if !ok || !rt.query[i].match(v) {
			return false
		}
	}
	return true
}

// valueMatch is one compiled "name: value" condition: a literal, "*" for
// any value that is present, or "~regex".
type valueMatch struct {
	name string // canonical header name, or query/cookie name as is
	any  bool
	lit  string
	re   *regexp.Regexp
}

func (m *valueMatch) match(v string) bool {
	switch {
	case m.any:
		return true
	case m.re != nil:
		return m.re.MatchString(v)
	}
	return v == m.lit
}

// matchValues holds when any of the header's values matches.
func (m *valueMatch) matchValues(vals []string) bool {
	for _, v := range vals {
		if m.match(v) {
			return true
		}
	}
	return false
}

// compileMatches turns a config map into matchers in name order, so that
// the order of evaluation does not depend on map iteration.
func compileMatches(m map[string]string, canon func(string) string) ([]valueMatch, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]valueMatch, 0, len(m))
	for _, k := range names {
		if k == "" {
			return nil, fmt.Errorf("empty name in match")
		}
		v := m[k]
		vm := valueMatch{name: canon(k)}
		switch {
		case v == "*":
			vm.any = true
		case strings.HasPrefix(v, "~"):
			re, err := regexp.Compile(v[1:])
			if err != nil {
				return nil, fmt.Errorf("compiling match for %q: %w", k, err)
			}
			vm.re = re
		default:
			vm.lit = v
		}
		out = append(out, vm)
	}
	return out, nil
}

func identity(s string) string { return s }

// queryValue finds the first value of name in a raw query string without
// allocating unless the value is percent-encoded.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var kv string
		if i := strings.IndexAny(raw, "&"); i >= 0 {
			kv, raw = raw[:i], raw[i+1:]
		} else {
			kv, raw = raw, ""
		}
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(k, "%+") {
			uk, err := url.QueryUnescape(k)
			if err != nil {
				continue
			}
			k = uk
		}
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			uv, err := url.QueryUnescape(v)
			if err != nil {
				return "", false
			}
			v = uv
		}
		return v, true
	}
	return "", false
}
