package l7

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"regexp"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// route is one compiled config.Route: its conditions (match.go) and its
// actions. Everything a request needs is computed here once, so that
// serving it needs no allocation for a plain route.
type route struct {
	name string

	// Conditions; the host is decided by the group the route is in.
	prefix    string
	exactPath string
	pathRE    *regexp.Regexp
	methods   []string
	headers   []valueMatch
	query     []valueMatch

	// pool is the route's own pool; nil for redirects and fixed responses.
	pool   *upstream.Pool
	splits []split
	// pools lists pool then the split pools, for sticky cookies.
	pools []*upstream.Pool
	rnd   func() uint64

	hash     hashKind
	hashName string // header (canonical) or cookie name

	sticky   *sticky
	retry    retryPolicy
	budget   *retryBudget
	limiter  *rateLimiter
	ejectOn  statusSet
	reqOps   headerOps
	respOps  headerOps
	redirect *redirect
	respond  *fixedResponse
	timeouts routeTimeouts

	metrics *routeMetrics // set by Apply (metrics.go); nil without a registry
}

// routeTimeouts are the route's backend timeouts; zero takes the server's.
type routeTimeouts struct {
	connect   time.Duration
	firstByte time.Duration
	idle      time.Duration
}

// routeTable is the immutable routing table of one listener, with the
// listener's limits. Apply builds a new one and swaps it in; requests load
// whichever is current.
type routeTable struct {
	exact map[string]*hostGroup // lower-case host
	wild  []wildGroup           // longest suffix first
	any   *hostGroup

	maxConns       int
	maxHeaderBytes int
	maxBodyBytes   int64
	client         clientTimeouts // timeouts.go
	// healthPath, when set, is answered by strata itself (lameduck.go).
	healthPath string
}

// match returns the route for a GET of host and path; tests use it.
func (t *routeTable) match(host, path string) *route {
	r, err := http.NewRequest(http.MethodGet, "http://x"+path, nil)
	if err != nil {
		return nil
	}
	r.Host = host
	return t.find(r)
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

// buildOptions carries what compiling routes needs besides the config.
type buildOptions struct {
	log *slog.Logger
	now func() time.Time
	rnd func() uint64
}

// buildTable compiles and validates one listener's routes.
func buildTable(ln *config.Listener, pools map[string]*upstream.Pool) (*routeTable, error) {
	return buildTableWith(ln, pools, buildOptions{})
}

func buildTableWith(ln *config.Listener, pools map[string]*upstream.Pool, o buildOptions) (*routeTable, error) {
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.rnd == nil {
		o.rnd = rand.Uint64
	}
	if ln.MaxConns < 0 || ln.MaxHeaderBytes < 0 || ln.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("listener %q: negative limit", listenerName(ln))
	}
	t := &routeTable{
		healthPath:     ln.HealthPath,
		exact:          map[string]*hostGroup{},
		maxConns:       ln.MaxConns,
		maxHeaderBytes: ln.MaxHeaderBytes,
		maxBodyBytes:   ln.MaxBodyBytes,
		client:         clientTimeoutsOf(ln),
	}
	if t.maxHeaderBytes == 0 {
		t.maxHeaderBytes = maxRequestHeader
	}
	wild := map[string]*hostGroup{}
	for i := range ln.Routes {
		r := &ln.Routes[i]
		where := fmt.Sprintf("listener %q route %d", listenerName(ln), i+1)
		if r.Name != "" {
			where += fmt.Sprintf(" (%s)", r.Name)
		}
		rt, err := compileRoute(r, i, ln, pools, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		host := strings.ToLower(normalizeHost(strings.TrimSpace(r.Host)))
		var g **hostGroup
		switch {
		case host == "" || host == "*":
			g = &t.any
		case strings.HasPrefix(host, "*."):
			suffix := host[1:]
			if len(suffix) < 2 || strings.Contains(suffix, "*") {
				return nil, fmt.Errorf("%s: invalid host pattern %q", where, r.Host)
			}
			wg := wild[suffix]
			if wg == nil {
				wg = &hostGroup{}
				wild[suffix] = wg
				t.wild = append(t.wild, wildGroup{suffix: suffix, group: wg})
			}
			g = &wg
		case strings.Contains(host, "*"):
			return nil, fmt.Errorf("%s: invalid host pattern %q (a wildcard must be the whole first label, as in *.example.com)", where, r.Host)
		default:
			eg := t.exact[host]
			if eg == nil {
				eg = &hostGroup{}
				t.exact[host] = eg
			}
			g = &eg
		}
		if *g == nil {
			*g = &hostGroup{}
		}
		(*g).routes = append((*g).routes, rt)
	}
	// Longest suffix first: *.a.example.com is more specific than
	// *.example.com. Equal lengths cannot both match one host.
	for i := 1; i < len(t.wild); i++ {
		for j := i; j > 0 && len(t.wild[j].suffix) > len(t.wild[j-1].suffix); j-- {
			t.wild[j], t.wild[j-1] = t.wild[j-1], t.wild[j]
		}
	}
	return t, nil
}

// compileRoute compiles the conditions and actions of one route.
func compileRoute(r *config.Route, idx int, ln *config.Listener, pools map[string]*upstream.Pool, o buildOptions) (*route, error) {
	rt := &route{name: r.Name, prefix: r.PathPrefix, exactPath: r.Path, rnd: o.rnd}
	if rt.name == "" {
		rt.name = fmt.Sprintf("%s#%d", listenerName(ln), idx+1)
	}
	if rt.prefix == "" {
		rt.prefix = "/"
	}
	if !strings.HasPrefix(rt.prefix, "/") {
		return nil, fmt.Errorf("path_prefix %q must start with /", r.PathPrefix)
	}
	if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		return nil, fmt.Errorf("path %q must start with /", r.Path)
	}
	// Requests are routed by their normalised path (normpath.go): a
	// route that could never match one is refused rather than dead.
	if err := config.CheckRoutePath(rt.prefix, false); err != nil {
		return nil, fmt.Errorf("path_prefix %w", err)
	}
	if err := config.CheckRoutePath(r.Path, true); err != nil {
		return nil, fmt.Errorf("path %w", err)
	}
	if r.PathRegex != "" {
		re, err := regexp.Compile(r.PathRegex)
		if err != nil {
			return nil, fmt.Errorf("compiling path_regex: %w", err)
		}
		rt.pathRE = re
	}
	for _, m := range r.Methods {
		if err := config.CheckMethod(m); err != nil {
			return nil, err
		}
	}
	rt.methods = r.Methods
	var err error
	if rt.headers, err = compileMatches(r.Headers, textproto.CanonicalMIMEHeaderKey); err != nil {
		return nil, fmt.Errorf("headers: %w", err)
	}
	if rt.query, err = compileMatches(r.Query, identity); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	if rt.hash, rt.hashName, err = parseHashKey(r.HashKey, true); err != nil {
		return nil, fmt.Errorf("hash_key: %w", err)
	}

	local := r.Redirect != nil || r.Respond != nil
	switch {
	case r.Redirect != nil && r.Respond != nil:
		return nil, fmt.Errorf("a route either redirects or responds, not both")
	case r.Redirect != nil:
		if rt.redirect, err = compileRedirect(r.Redirect, rt.prefix); err != nil {
			return nil, fmt.Errorf("redirect: %w", err)
		}
	case r.Respond != nil:
		rt.respond = compileRespond(r.Respond)
	}
	if !local || r.Pool != "" {
		p, ok := pools[r.Pool]
		if !ok || p == nil {
			return nil, fmt.Errorf("unknown pool %q", r.Pool)
		}
		rt.pool = p
		rt.pools = []*upstream.Pool{p}
	}
	if rt.splits, err = compileSplits(r.Split, pools); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	if len(rt.splits) > 0 && rt.pool == nil {
		return nil, fmt.Errorf("split needs the route's own pool")
	}
	for _, s := range rt.splits {
		rt.pools = append(rt.pools, s.pool)
	}
	if r.Sticky != nil && rt.pool != nil {
		if rt.sticky, err = newSticky(r.Sticky, listenerName(ln), rt.name, rt.pools, o.log); err != nil {
			return nil, fmt.Errorf("sticky: %w", err)
		}
	}
	rt.timeouts = routeTimeouts{
		connect:   time.Duration(r.Timeouts.Connect),
		firstByte: time.Duration(r.Timeouts.FirstByte),
		idle:      time.Duration(r.Timeouts.Idle),
	}
	if rt.timeouts.connect < 0 || rt.timeouts.firstByte < 0 || rt.timeouts.idle < 0 {
		return nil, fmt.Errorf("timeouts must not be negative")
	}
	if rt.retry, err = compileRetry(&r.Retry); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	rt.budget = newRetryBudget(float64(r.Retry.BudgetPercent)/100, r.Retry.BudgetMinPerSec, o.now)
	if rt.ejectOn, err = newStatusSet(r.EjectOnStatus, 400); err != nil {
		return nil, fmt.Errorf("eject_on_status: %w", err)
	}
	if rt.reqOps, err = compileHeaderOps(&r.RequestHeaders); err != nil {
		return nil, fmt.Errorf("request_headers: %w", err)
	}
	if rt.respOps, err = compileHeaderOps(&r.ResponseHeaders); err != nil {
		return nil, fmt.Errorf("response_headers: %w", err)
	}
	if r.RateLimit != nil {
		if rt.limiter, err = newRateLimiter(r.RateLimit, o.now); err != nil {
			return nil, fmt.Errorf("rate_limit: %w", err)
		}
	}
	return rt, nil
}

// hashKind says what a hashing balancer hashes for a route.
type hashKind uint8

const (
	hashClient hashKind = iota
	hashURI
	hashHeader
	hashCookie
)

// parseHashKey reads "client", "uri", "header:NAME" or "cookie:NAME".
func parseHashKey(k string, full bool) (hashKind, string, error) {
	if err := config.CheckHashKey(k, full); err != nil {
		return 0, "", err
	}
	kind, name, _ := strings.Cut(k, ":")
	switch {
	case k == "" || k == "client":
		return hashClient, "", nil
	case k == "uri":
		return hashURI, "", nil
	case kind == "header":
		return hashHeader, textproto.CanonicalMIMEHeaderKey(name), nil
	default:
		return hashCookie, name, nil
	}
}

// keyString returns the text a request is hashed or limited by; a request
// without the header or cookie falls back to the client address.
func keyString(kind hashKind, name string, r *http.Request, ip string) string {
	switch kind {
	case hashURI:
		return r.RequestURI
	case hashHeader:
		if v := r.Header[name]; len(v) > 0 {
			return v[0]
		}
	case hashCookie:
		if v, ok := cookieValue(r.Header["Cookie"], name); ok {
			return v
		}
	}
	return ip
}

// hashKey is the key the route's pickers are given.
func (rt *route) hashKey(r *http.Request, ip string) uint64 {
	return xxhash.Sum64String(keyString(rt.hash, rt.hashName, r, ip))
}

func listenerName(ln *config.Listener) string {
	if ln.Name != "" {
		return ln.Name
	}
	return ln.Listen
}
