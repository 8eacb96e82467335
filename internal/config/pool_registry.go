package config

import (
	"fmt"
	"strings"
)

// PoolRegistry makes a pool follow a service of the strata registry
// instead of listing static backends: the pool's members are the service's
// healthy, enabled instances, updated within a second of every change, with
// no reload. Its fields, defaults and validation live in this file; the
// provider that follows the service is internal/discovery.
type PoolRegistry struct {
	// Servers are the HTTP addresses (host:port) of registry nodes; any
	// node answers. Required.
	Servers []string `yaml:"servers"`
	// Namespace is the service's namespace (default public).
	Namespace string `yaml:"namespace"`
	// Group is the service's group (default DEFAULT_GROUP).
	Group string `yaml:"group"`
	// Service is the service's name. Required.
	Service string `yaml:"service"`
	// Clusters keeps only instances of these clusters (all when empty).
	Clusters []string `yaml:"clusters"`
	// Selector keeps only instances whose metadata hold every pair.
	Selector map[string]string `yaml:"selector"`
	// Token is the namespace's access token, when it needs one.
	Token string `yaml:"token"`
	// CacheDir keeps the service's last answer on disk, so a process that
	// starts while every registry server is down still has backends
	// (empty: no cache).
	CacheDir string `yaml:"cache_dir"`
}

// Defaults of pools[].registry, the registry's own.
const (
	DefaultRegistryNamespace = "public"
	DefaultRegistryGroup     = "DEFAULT_GROUP"
)

func init() {
	onDefaults(poolRegistryDefaults)
	onValidate(poolRegistryValidate)
}

func poolRegistryDefaults(c *Config, _ func(isZero bool, path string) bool) {
	for i := range c.Pools {
		r := c.Pools[i].Registry
		if r == nil {
			continue
		}
		if r.Namespace == "" {
			r.Namespace = DefaultRegistryNamespace
		}
		if r.Group == "" {
			r.Group = DefaultRegistryGroup
		}
	}
}

func poolRegistryValidate(v *validator, _ map[string]bool) {
	for i := range v.c.Pools {
		p := &v.c.Pools[i]
		r := p.Registry
		if r == nil {
			continue
		}
		rp := fmt.Sprintf("pools[%d].registry", i)
		if len(p.Backends) > 0 {
			// Two sources would fight over the pool: each Update replaces
			// the other's backends.
			v.errorf(rp, "a pool takes its backends from backends or from registry, not both (backends at line %d)", v.line(fmt.Sprintf("pools[%d].backends", i)))
		}
		if len(r.Servers) == 0 {
			v.errorf(rp+".servers", "at least one registry server (host:port) is required")
		}
		for j, s := range r.Servers {
			v.addr(fmt.Sprintf("%s.servers[%d]", rp, j), s, true)
		}
		if strings.TrimSpace(r.Service) == "" {
			v.errorf(rp+".service", "service is required")
		}
		for j, cl := range r.Clusters {
			if cl == "" {
				v.errorf(fmt.Sprintf("%s.clusters[%d]", rp, j), "cluster name must not be empty")
			}
		}
		for k := range r.Selector {
			if k == "" {
				v.errorf(rp+".selector", "selector keys must not be empty")
			}
		}
	}
}
