package config

import "strings"

// Route sends matching requests to a pool.
type Route struct {
	// Host matches the request host exactly, or a suffix with "*.";
	// empty matches every host.
	Host string `yaml:"host"`
	// PathPrefix matches the start of the path (default /).
	PathPrefix string `yaml:"path_prefix"`
	// Pool names the pool the route sends to.
	Pool string `yaml:"pool"`
}

// route checks one route of a listener; rp is its field path.
func (v *validator) route(rp string, r *Route, pools map[string]bool) {
	switch {
	case r.Pool == "":
		v.errorf(rp+".pool", "pool is required")
	case !pools[r.Pool]:
		v.errorf(rp+".pool", "no pool named %q (have %s)", r.Pool, poolList(pools))
	}
	if !strings.HasPrefix(r.PathPrefix, "/") {
		v.errorf(rp+".path_prefix", "%q must start with /", r.PathPrefix)
	}
}
