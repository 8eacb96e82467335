package l7

import (
	"fmt"
	"net/http"
	"net/textproto"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// split is one canary or gray-release share of a route.
//
// A request is placed in two steps. First the conditions: the first split
// whose headers or cookies all match the request takes it, whatever the
// weights, so that testers (x-canary: 1) or a cohort (a cookie) always
// reach the new version. Then the weights: the other requests go to each
// split's pool with its weight as a percentage, and to the route's own
// pool for the rest of 100. The draw is random per request; sticky
// cookies, when the route has them, keep a client on the pool (and the
// backend) it first reached.
type split struct {
	pool    *upstream.Pool
	weight  int // percent
	cum     int // cumulative percent up to and including this split
	headers []valueMatch
	cookies []valueMatch
}

func compileSplits(cs []config.RouteSplit, pools map[string]*upstream.Pool) ([]split, error) {
	out := make([]split, 0, len(cs))
	total := 0
	for i, c := range cs {
		p, ok := pools[c.Pool]
		if !ok || p == nil {
			return nil, fmt.Errorf("split %d: unknown pool %q", i+1, c.Pool)
		}
		if c.Weight < 0 || c.Weight > 100 {
			return nil, fmt.Errorf("split %d: weight %d is not a percentage", i+1, c.Weight)
		}
		total += c.Weight
		s := split{pool: p, weight: c.Weight, cum: total}
		var err error
		if s.headers, err = compileMatches(c.Headers, textproto.CanonicalMIMEHeaderKey); err != nil {
			return nil, fmt.Errorf("split %d headers: %w", i+1, err)
		}
		if s.cookies, err = compileMatches(c.Cookies, identity); err != nil {
			return nil, fmt.Errorf("split %d cookies: %w", i+1, err)
		}
		out = append(out, s)
	}
	if total > 100 {
		return nil, fmt.Errorf("weights add up to %d%%, more than 100%%", total)
	}
	return out, nil
}

// conditional reports whether s has conditions and r meets them all.
func (s *split) conditional(r *http.Request) bool {
	if len(s.headers) == 0 && len(s.cookies) == 0 {
		return false
	}
	for i := range s.headers {
		if !s.headers[i].matchValues(r.Header[s.headers[i].name]) {
			return false
		}
	}
	for i := range s.cookies {
		v, ok := cookieValue(r.Header["Cookie"], s.cookies[i].name)
		if !ok || !s.cookies[i].match(v) {
			return false
		}
	}
	return true
}

// forcedPool returns the index in rt.pools of the pool a split condition
// sends r to, or -1.
func (rt *route) forcedPool(r *http.Request) int {
	for i := range rt.splits {
		if rt.splits[i].conditional(r) {
			return i + 1
		}
	}
	return -1
}

// drawPool draws a pool index in rt.pools by the split weights.
func (rt *route) drawPool() int {
	if len(rt.splits) == 0 {
		return 0
	}
	n := int(rt.rnd() % 100)
	for i := range rt.splits {
		if n < rt.splits[i].cum {
			return i + 1
		}
	}
	return 0
}
