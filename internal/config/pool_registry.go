package config

import (
	"fmt"
	"net/netip"
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
	// Token is the namespace's access token, when it needs one. Secrets
	// stay out of JSON renderings of the config.
	Token string `yaml:"token" json:"-"`
	// TokenFile reads Token from a file that is not world-readable.
	TokenFile string `yaml:"token_file"`
	// Allow lists the networks (CIDRs or single addresses) an instance's
	// address must be in to become a backend. Empty: every unicast address
	// except loopback, link-local and unspecified ones (DefaultAllows).
	// Whatever it says, the addresses this process listens on (admin,
	// registry, Raft, l7, l4, dns) never become backends.
	Allow []string `yaml:"allow"`
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

// DefaultAllows reports whether an instance address is allowed when
// pools[].registry.allow is empty: every unicast address but loopback
// (127.0.0.0/8, ::1) and link-local (169.254.0.0/16, fe80::/10, where
// cloud metadata services answer). Anyone who may register an instance
// chooses where a balancer sends its clients' requests; by default they
// cannot choose a service that only this machine was meant to reach.
// Unspecified and multicast addresses are never backends, whatever allow
// says (AddrAllowed).
func DefaultAllows(a netip.Addr) bool {
	a = a.Unmap()
	return !a.IsLoopback() && !a.IsLinkLocalUnicast()
}

// AddrAllowed reports whether an instance address may become a backend of
// a pool with the given allow list (parsed pools[].registry.allow). An
// unspecified address (0.0.0.0, ::) reaches this machine when dialled, and
// a multicast one is no single server, so neither is ever allowed.
func AddrAllowed(a netip.Addr, allow []netip.Prefix) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
		return false
	}
	if len(allow) == 0 {
		return DefaultAllows(a)
	}
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

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
		if r.Token != "" && r.TokenFile != "" {
			v.errorf(rp+".token_file", "set token or token_file, not both")
		}
		for j, a := range r.Allow {
			if _, err := ParsePrefix(a); err != nil {
				v.errorf(fmt.Sprintf("%s.allow[%d]", rp, j), "%v", err)
			}
		}
		for k := range r.Selector {
			if k == "" {
				v.errorf(rp+".selector", "selector keys must not be empty")
			}
		}
	}
}
