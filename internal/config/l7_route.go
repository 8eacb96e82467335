package config

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Route matches requests and says what to do with them: send them to a
// pool (possibly split with other pools), redirect them, or answer them
// with a fixed response.
//
// A listener picks the most specific host first (an exact host, then the
// longest matching "*." suffix, then routes without a host) and tries the
// routes of that host in config order; the first whose conditions all hold
// wins. A request whose host matches but whose other conditions match no
// route of that host gets 404; it does not fall through to less specific
// hosts. This is how nginx's server_name and Envoy's virtual hosts behave.
type Route struct {
	// Name identifies the route in logs (default: its position).
	Name string `yaml:"name"`
	// Host matches the request host exactly, or a suffix with "*.";
	// empty matches every host.
	Host string `yaml:"host"`
	// PathPrefix matches the start of the path (default /).
	PathPrefix string `yaml:"path_prefix"`
	// Path matches the whole path exactly; empty matches any.
	Path string `yaml:"path"`
	// PathRegex matches the path by an RE2 regular expression (unanchored
	// unless it says ^…$); empty matches any.
	PathRegex string `yaml:"path_regex"`
	// Methods lists the request methods that match; empty matches all.
	Methods []string `yaml:"methods"`
	// Headers map request header names to the value they must have; "*"
	// asks only that the header be present, and a value starting with "~"
	// is a regular expression.
	Headers map[string]string `yaml:"headers"`
	// Query maps query parameter names to the value they must have, with
	// the same "*" and "~" forms as Headers.
	Query map[string]string `yaml:"query"`

	// Pool names the pool the route sends to; it is not needed when the
	// route redirects or responds itself.
	Pool string `yaml:"pool"`
	// HashKey is what hashing balancers (sh, ketama, maglev …) hash:
	// client (the client address, default), uri, header:NAME or
	// cookie:NAME. A request without the header or cookie falls back to
	// the client address.
	HashKey string `yaml:"hash_key"`
	// Split sends part of the route's traffic to other pools (canary and
	// gray release).
	Split []RouteSplit `yaml:"split"`
	// Sticky pins each client to one backend with a signed cookie; off
	// when absent.
	Sticky *RouteSticky `yaml:"sticky"`
	// Timeouts bound the route's backend exchanges.
	Timeouts RouteTimeouts `yaml:"timeouts"`
	// Retry says which failed attempts are tried again on another backend.
	Retry RouteRetry `yaml:"retry"`
	// EjectOnStatus lists response statuses that count as a backend
	// failure for passive ejection, as connection errors always do.
	EjectOnStatus []int `yaml:"eject_on_status"`
	// RequestHeaders edits the request before it is sent to the backend.
	RequestHeaders HeaderOps `yaml:"request_headers"`
	// ResponseHeaders edits the response before it is sent to the client.
	ResponseHeaders HeaderOps `yaml:"response_headers"`
	// Redirect answers with a redirect instead of proxying.
	Redirect *RouteRedirect `yaml:"redirect"`
	// Respond answers with a fixed response instead of proxying.
	Respond *RouteRespond `yaml:"respond"`
	// RateLimit bounds the request rate per client; off when absent.
	RateLimit *RouteRateLimit `yaml:"rate_limit"`
}

// RouteSplit sends a share of a route's traffic to another pool.
type RouteSplit struct {
	// Pool receives the share.
	Pool string `yaml:"pool"`
	// Weight is the percentage (0–100) of the route's requests sent to
	// Pool; the rest of 100 goes to the route's own pool.
	Weight int `yaml:"weight"`
	// Headers send every request carrying these header values to Pool,
	// whatever the weight ("*" and "~" as in Route.Headers).
	Headers map[string]string `yaml:"headers"`
	// Cookies send every request carrying these cookie values to Pool.
	Cookies map[string]string `yaml:"cookies"`
}

// RouteSticky configures cookie-based session persistence.
type RouteSticky struct {
	// Cookie is the cookie's name (default strata_sticky).
	Cookie string `yaml:"cookie"`
	// Secret signs the cookie with HMAC-SHA256. Every node of a cluster
	// must share it; when empty a key is derived from the config and a
	// warning logged. Secrets stay out of JSON renderings of the config.
	Secret string `yaml:"secret" json:"-"`
	// SecretFile reads Secret from a file that is not world-readable.
	SecretFile string `yaml:"secret_file"`
	// MaxAge is the cookie's lifetime (0s: a session cookie).
	MaxAge Duration `yaml:"max_age"`
	// Path is the cookie's Path attribute (default /).
	Path string `yaml:"path"`
	// Secure adds the Secure attribute.
	Secure bool `yaml:"secure"`
}

// RouteTimeouts bound one backend exchange; zero takes the server default.
type RouteTimeouts struct {
	// Connect bounds connecting to a backend (default 5s).
	Connect Duration `yaml:"connect"`
	// FirstByte bounds the wait for the response head once the request
	// is sent (default: idle).
	FirstByte Duration `yaml:"first_byte"`
	// Idle bounds backend silence while a body streams (default 60s).
	Idle Duration `yaml:"idle"`
}

// RouteRetry configures retries on another backend.
type RouteRetry struct {
	// Attempts is how many times a failed request is tried again
	// (default 1; 0 turns retries off).
	Attempts *int `yaml:"attempts"`
	// Statuses are response statuses retried like connection errors
	// (default none).
	Statuses []int `yaml:"statuses"`
	// OnTimeout retries a backend that sent no response head in time.
	OnTimeout bool `yaml:"on_timeout"`
	// NonIdempotent lets POST and PATCH be retried too; their body is
	// buffered up to MaxBodyBytes so it can be sent again.
	NonIdempotent bool `yaml:"non_idempotent"`
	// MaxBodyBytes is the largest request body buffered for a replay
	// (default 64 KiB); larger bodies are not retried.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// BudgetPercent caps retries at this percentage of requests over the
	// last ten seconds (default 20).
	BudgetPercent int `yaml:"budget_percent"`
	// BudgetMinPerSec allows this many retries per second whatever the
	// ratio (default 3).
	BudgetMinPerSec int `yaml:"budget_min_per_sec"`
}

// HeaderOps edits a header block: Remove first, then Set, then Add.
type HeaderOps struct {
	// Set replaces these fields.
	Set map[string]string `yaml:"set"`
	// Add appends these fields.
	Add map[string]string `yaml:"add"`
	// Remove deletes these fields.
	Remove []string `yaml:"remove"`
}

// RouteRedirect answers with a redirect built from the request.
type RouteRedirect struct {
	// Status is 301, 302, 303, 307 or 308 (default 302).
	Status int `yaml:"status"`
	// Scheme replaces the scheme (default: the request's).
	Scheme string `yaml:"scheme"`
	// Host replaces the host, with an optional port (default: the
	// request's).
	Host string `yaml:"host"`
	// Path replaces the whole path.
	Path string `yaml:"path"`
	// PrefixRewrite replaces the route's path_prefix at the start of the
	// path.
	PrefixRewrite string `yaml:"prefix_rewrite"`
	// DropQuery leaves the query string out of the new location.
	DropQuery bool `yaml:"drop_query"`
}

// RouteRespond is a fixed response.
type RouteRespond struct {
	// Status is the response status (default 200).
	Status int `yaml:"status"`
	// Body is the response body.
	Body string `yaml:"body"`
	// ContentType is the body's type (default text/plain; charset=utf-8).
	ContentType string `yaml:"content_type"`
}

// RouteRateLimit is a token bucket per client.
type RouteRateLimit struct {
	// Rate is the sustained number of requests allowed per key in each
	// Per.
	Rate int `yaml:"rate"`
	// Per is the period Rate counts over (default 1s).
	Per Duration `yaml:"per"`
	// Burst is how many requests a key may send at once (default: rate).
	Burst int `yaml:"burst"`
	// Key is client (the client address, default) or header:NAME.
	Key string `yaml:"key"`
	// MaxKeys bounds the keys remembered; the least recently seen are
	// forgotten first (default 10000).
	MaxKeys int `yaml:"max_keys"`
}

// CheckRoutePath refuses a path_prefix (whole false) or an exact path
// (whole true) with a "//", "/./" or "/../" in it, or a path that ends in
// "/." or "/..": requests are routed by their normalised path, which has
// no such segment, so the route could never match.
func CheckRoutePath(p string, whole bool) error {
	if strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		whole && (strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")) {
		return fmt.Errorf("%q has an empty or dot segment, which no normalised request path has", p)
	}
	return nil
}

// route checks one route of a listener; rp is its field path.
func (v *validator) route(rp string, r *Route, pools map[string]bool) {
	local := r.Redirect != nil || r.Respond != nil
	switch {
	case r.Redirect != nil && r.Respond != nil:
		v.errorf(rp+".respond", "a route either redirects or responds, not both")
	case local && (r.Pool != "" || len(r.Split) > 0):
		v.errorf(rp+".pool", "a route that redirects or responds sends to no pool")
	case local:
	case r.Pool == "":
		v.errorf(rp+".pool", "pool is required")
	case !pools[r.Pool]:
		v.errorf(rp+".pool", "no pool named %q (have %s)", r.Pool, poolList(pools))
	}
	if !strings.HasPrefix(r.PathPrefix, "/") {
		v.errorf(rp+".path_prefix", "%q must start with /", r.PathPrefix)
	}
	if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		v.errorf(rp+".path", "%q must start with /", r.Path)
	}
	if err := CheckRoutePath(r.PathPrefix, false); err != nil {
		v.errorf(rp+".path_prefix", "%v", err)
	}
	if err := CheckRoutePath(r.Path, true); err != nil {
		v.errorf(rp+".path", "%v", err)
	}
	if r.PathRegex != "" {
		if _, err := regexp.Compile(r.PathRegex); err != nil {
			v.errorf(rp+".path_regex", "%v", err)
		}
	}
	for i, m := range r.Methods {
		if err := CheckMethod(m); err != nil {
			v.errorf(fmt.Sprintf("%s.methods[%d]", rp, i), "%v", err)
		}
	}
	v.valueMatches(rp+".headers", r.Headers)
	v.valueMatches(rp+".query", r.Query)
	if err := CheckHashKey(r.HashKey, true); err != nil {
		v.errorf(rp+".hash_key", "%v", err)
	}
	total := 0
	for i := range r.Split {
		s := &r.Split[i]
		sp := fmt.Sprintf("%s.split[%d]", rp, i)
		switch {
		case s.Pool == "":
			v.errorf(sp+".pool", "pool is required")
		case !pools[s.Pool]:
			v.errorf(sp+".pool", "no pool named %q (have %s)", s.Pool, poolList(pools))
		}
		if s.Weight < 0 || s.Weight > 100 {
			v.errorf(sp+".weight", "must be a percentage from 0 to 100, got %d", s.Weight)
		}
		if s.Weight == 0 && len(s.Headers) == 0 && len(s.Cookies) == 0 {
			v.errorf(sp+".weight", "a split needs a weight, headers or cookies")
		}
		total += s.Weight
		v.valueMatches(sp+".headers", s.Headers)
		v.valueMatches(sp+".cookies", s.Cookies)
	}
	if total > 100 {
		v.errorf(rp+".split", "weights add up to %d%%, more than 100%%", total)
	}
	if s := r.Sticky; s != nil {
		if s.Cookie != "" && !isToken(s.Cookie) {
			v.errorf(rp+".sticky.cookie", "%q is not a valid cookie name", s.Cookie)
		}
		switch {
		case s.Secret != "" && s.SecretFile != "":
			v.errorf(rp+".sticky.secret_file", "set secret or secret_file, not both")
		case s.Secret != "":
			if err := CheckStickySecret(s.Secret); err != nil {
				v.errorf(rp+".sticky.secret", "%v", err)
			}
		}
		if s.MaxAge < 0 {
			v.errorf(rp+".sticky.max_age", "must not be negative, got %s", s.MaxAge)
		}
		if s.Path != "" && !strings.HasPrefix(s.Path, "/") {
			v.errorf(rp+".sticky.path", "%q must start with /", s.Path)
		}
	}
	for name, d := range map[string]Duration{"connect": r.Timeouts.Connect, "first_byte": r.Timeouts.FirstByte, "idle": r.Timeouts.Idle} {
		if d < 0 {
			v.errorf(rp+".timeouts."+name, "must not be negative, got %s", d)
		}
	}
	rr := &r.Retry
	if rr.Attempts != nil && (*rr.Attempts < 0 || *rr.Attempts > 10) {
		v.errorf(rp+".retry.attempts", "must be from 0 to 10, got %d", *rr.Attempts)
	}
	for i, st := range rr.Statuses {
		if st < 500 || st > 599 {
			v.errorf(fmt.Sprintf("%s.retry.statuses[%d]", rp, i), "only 5xx statuses are retried, got %d", st)
		}
	}
	if rr.MaxBodyBytes < 0 {
		v.errorf(rp+".retry.max_body_bytes", "must not be negative, got %d", rr.MaxBodyBytes)
	}
	if rr.BudgetPercent < 0 || rr.BudgetPercent > 100 {
		v.errorf(rp+".retry.budget_percent", "must be from 0 to 100, got %d", rr.BudgetPercent)
	}
	if rr.BudgetMinPerSec < 0 {
		v.errorf(rp+".retry.budget_min_per_sec", "must not be negative, got %d", rr.BudgetMinPerSec)
	}
	for i, st := range r.EjectOnStatus {
		if st < 400 || st > 599 {
			v.errorf(fmt.Sprintf("%s.eject_on_status[%d]", rp, i), "must be a 4xx or 5xx status, got %d", st)
		}
	}
	v.headerOps(rp+".request_headers", &r.RequestHeaders)
	v.headerOps(rp+".response_headers", &r.ResponseHeaders)
	if rd := r.Redirect; rd != nil {
		switch rd.Status {
		case 0, 301, 302, 303, 307, 308:
		default:
			v.errorf(rp+".redirect.status", "must be 301, 302, 303, 307 or 308, got %d", rd.Status)
		}
		switch rd.Scheme {
		case "", "http", "https":
		default:
			v.errorf(rp+".redirect.scheme", "must be http or https, got %q", rd.Scheme)
		}
		if rd.Path != "" && rd.PrefixRewrite != "" {
			v.errorf(rp+".redirect.prefix_rewrite", "path and prefix_rewrite cannot both be set")
		}
		if rd.Path != "" && !strings.HasPrefix(rd.Path, "/") {
			v.errorf(rp+".redirect.path", "%q must start with /", rd.Path)
		}
		if strings.ContainsAny(rd.Host, "/ \r\n") {
			v.errorf(rp+".redirect.host", "%q is not a host", rd.Host)
		}
	}
	if rs := r.Respond; rs != nil && rs.Status != 0 && (rs.Status < 200 || rs.Status > 599) {
		v.errorf(rp+".respond.status", "must be from 200 to 599, got %d", rs.Status)
	}
	if rl := r.RateLimit; rl != nil {
		if rl.Rate <= 0 {
			v.errorf(rp+".rate_limit.rate", "must be positive, got %d", rl.Rate)
		}
		if rl.Per < 0 {
			v.errorf(rp+".rate_limit.per", "must not be negative, got %s", rl.Per)
		}
		if rl.Burst < 0 {
			v.errorf(rp+".rate_limit.burst", "must not be negative, got %d", rl.Burst)
		}
		if rl.MaxKeys < 0 {
			v.errorf(rp+".rate_limit.max_keys", "must not be negative, got %d", rl.MaxKeys)
		}
		if err := CheckHashKey(rl.Key, false); err != nil {
			v.errorf(rp+".rate_limit.key", "%v", err)
		}
	}
}

// valueMatches checks a map of names to match values ("*", "~regex" or a
// literal).
func (v *validator) valueMatches(path string, m map[string]string) {
	for _, name := range sortedKeys(m) {
		if name == "" {
			v.errorf(path, "empty name")
			continue
		}
		if val := m[name]; strings.HasPrefix(val, "~") {
			if _, err := regexp.Compile(val[1:]); err != nil {
				v.errorf(path+"."+name, "%v", err)
			}
		}
	}
}

func (v *validator) headerOps(path string, h *HeaderOps) {
	for _, m := range []map[string]string{h.Set, h.Add} {
		for _, name := range sortedKeys(m) {
			if !isToken(name) {
				v.errorf(path, "%q is not a valid header name", name)
			}
			if strings.ContainsAny(m[name], "\r\n\x00") {
				v.errorf(path+"."+name, "header values cannot hold line breaks or NUL")
			}
		}
	}
	for i, name := range h.Remove {
		if !isToken(name) {
			v.errorf(fmt.Sprintf("%s.remove[%d]", path, i), "%q is not a valid header name", name)
		}
	}
}

// CheckMethod reports whether m is a request method name (an RFC 9110
// token); methods are case-sensitive and conventionally upper case.
func CheckMethod(m string) error {
	if !isToken(m) {
		return fmt.Errorf("%q is not a method", m)
	}
	if m != strings.ToUpper(m) {
		return fmt.Errorf("method %q must be upper case (methods are case-sensitive)", m)
	}
	return nil
}

// CheckHashKey validates a hash_key or rate_limit key; withURIAndCookie
// allows the uri and cookie:NAME forms.
func CheckHashKey(k string, withURIAndCookie bool) error {
	kind, name, _ := strings.Cut(k, ":")
	switch {
	case k == "" || k == "client":
		return nil
	case k == "uri" && withURIAndCookie:
		return nil
	case kind == "header" && isToken(name):
		return nil
	case kind == "cookie" && withURIAndCookie && isToken(name):
		return nil
	}
	if withURIAndCookie {
		return fmt.Errorf("%q is not a key (want client, uri, header:NAME or cookie:NAME)", k)
	}
	return fmt.Errorf("%q is not a key (want client or header:NAME)", k)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func init() {
	onValidate(func(v *validator, _ map[string]bool) {
		if v.c.L7 == nil {
			return
		}
		for i := range v.c.L7.Listeners {
			l := &v.c.L7.Listeners[i]
			lp := fmt.Sprintf("l7.listeners[%d]", i)
			if l.MaxConns < 0 {
				v.errorf(lp+".max_conns", "must not be negative, got %d", l.MaxConns)
			}
			if l.MaxHeaderBytes != 0 && (l.MaxHeaderBytes < 1024 || l.MaxHeaderBytes > 1<<20) {
				v.errorf(lp+".max_header_bytes", "must be from 1024 to 1048576, got %d", l.MaxHeaderBytes)
			}
			if l.MaxBodyBytes < 0 {
				v.errorf(lp+".max_body_bytes", "must not be negative, got %d", l.MaxBodyBytes)
			}
		}
	})
}

// CheckStickySecret checks a sticky-cookie signing secret's length.
func CheckStickySecret(secret string) error {
	if len(secret) < 16 {
		return fmt.Errorf("must be at least 16 bytes long, got %d", len(secret))
	}
	return nil
}
