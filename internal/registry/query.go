package registry

import (
	"sort"

	"github.com/cespare/xxhash/v2"
)

// Query asks for the instances of one service.
type Query struct {
	Key
	// Clusters keeps only instances of these clusters (all when empty).
	Clusters []string
	// Selector keeps only instances whose metadata hold every pair.
	Selector map[string]string
	// HealthyOnly drops unhealthy and disabled instances (unless the
	// protection threshold steps in).
	HealthyOnly bool
	// Zone is the caller's zone: when set, the answer holds that zone's
	// instances, and other zones in the service's failover order while the
	// zone's healthy share is below the failover threshold.
	Zone string
	// Caller identifies the caller for percentage gray routes (its address
	// or an application name); CallerTags are its tags for tag routes.
	Caller     string
	CallerTags map[string]string
}

// Result is the answer to a Query.
type Result struct {
	Service Service `json:"service"`
	// Index is the service's change index, for blocking queries.
	Index     uint64     `json:"index"`
	Instances []Instance `json:"instances"`
	// Protected is true when the healthy share fell below the protection
	// threshold and the answer holds unhealthy instances too.
	Protected bool `json:"protected"`
	// Zones lists the zones the answer draws from when the query named a
	// zone: the caller's first, then any failover zones added.
	Zones []string `json:"zones,omitempty"`
	// Route names the gray route that matched the caller, if any.
	Route string `json:"route,omitempty"`
	// Found is false when the service does not exist.
	Found bool `json:"found"`
}

// usable reports whether an instance can take traffic.
func usable(in *Instance) bool { return in.Healthy && in.Enabled && in.Weight > 0 }

// matches reports whether md holds every pair of sel.
func matches(md, sel map[string]string) bool {
	for k, v := range sel {
		if md[k] != v {
			return false
		}
	}
	return true
}

// routeFor returns the first route that matches the caller.
func routeFor(routes []Route, q *Query) *Route {
	for i := range routes {
		r := &routes[i]
		if len(r.CallerTags) > 0 && !matches(q.CallerTags, r.CallerTags) {
			continue
		}
		if r.Percent > 0 && r.Percent < 100 {
			// A stable hash of the caller and the route's name puts each
			// caller on one side of each split and keeps splits of
			// different routes independent.
			h := xxhash.Sum64String(r.Name + "\x00" + q.Caller)
			if float64(h%10000) >= r.Percent*100 {
				continue
			}
		}
		return r
	}
	return nil
}

// Select answers q over a service view. It allocates the answer and
// nothing else per instance.
func Select(v View, found bool, q *Query) Result {
	res := Result{Service: v.Service, Index: v.Index, Found: found}
	cands := make([]Instance, 0, len(v.Instances))
	var sel map[string]string
	if r := routeFor(v.Service.Routes, q); r != nil {
		res.Route, sel = r.Name, r.Select
	}
	for i := range v.Instances {
		in := &v.Instances[i]
		if len(q.Clusters) > 0 && !contains(q.Clusters, in.Cluster) {
			continue
		}
		if !matches(in.Metadata, q.Selector) || !matches(in.Metadata, sel) {
			continue
		}
		cands = append(cands, *in)
	}
	if q.Zone != "" {
		cands, res.Zones = zoneAffinity(cands, q.Zone, &v.Service.Failover)
	}
	if !q.HealthyOnly {
		res.Instances = cands
		return res
	}
	healthy := 0
	for i := range cands {
		if usable(&cands[i]) {
			healthy++
		}
	}
	if len(cands) > 0 && float64(healthy) < v.Service.ProtectThreshold*float64(len(cands)) {
		// Return every enabled instance: the callers spread over all of
		// them instead of crushing the few that still look healthy.
		res.Protected = true
		out := cands[:0]
		for _, in := range cands {
			if in.Enabled {
				out = append(out, in)
			}
		}
		res.Instances = out
		return res
	}
	out := cands[:0]
	for _, in := range cands {
		if usable(&in) {
			out = append(out, in)
		}
	}
	res.Instances = out
	return res
}

// zoneAffinity keeps the caller's zone and adds failover zones, in order,
// while the healthy share of what is kept stays below the threshold.
func zoneAffinity(cands []Instance, zone string, f *Failover) ([]Instance, []string) {
	byZone := map[string][]Instance{}
	for _, in := range cands {
		byZone[in.Cluster] = append(byZone[in.Cluster], in)
	}
	order := f.Order[zone]
	if order == nil {
		for z := range byZone {
			if z != zone {
				order = append(order, z)
			}
		}
		sort.Strings(order)
	}
	out := append([]Instance(nil), byZone[zone]...)
	zones := []string{zone}
	threshold := f.Threshold
	if threshold == 0 {
		// Without a threshold the caller still fails over when its zone
		// has nothing healthy at all.
		threshold = 1e-9
	}
	for _, z := range order {
		if share(out) >= threshold {
			break
		}
		if z == zone || len(byZone[z]) == 0 {
			continue
		}
		out = append(out, byZone[z]...)
		zones = append(zones, z)
	}
	return out, zones
}

// share is the healthy share of s (0 when empty).
func share(s []Instance) float64 {
	if len(s) == 0 {
		return 0
	}
	n := 0
	for i := range s {
		if usable(&s[i]) {
			n++
		}
	}
	return float64(n) / float64(len(s))
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
