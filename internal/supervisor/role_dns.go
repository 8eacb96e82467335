package supervisor

import (
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/dnslb"
	"github.com/strata-lb/strata/internal/registry"
)

func init() {
	registerRole("dns", func(c *config.Config) bool { return c.DNS != nil }, func(env Env) (Role, error) {
		// dns.registry reads the registry role of this process. Roles are
		// applied in the order their files register them (dns before
		// registry), so the DNS role asks for the registry lazily, every
		// time it looks, rather than once when it is created: it finds the
		// registry as soon as that role has started, and loses it when a
		// reload removes it.
		services := func() dnslb.ServiceSource {
			if n, ok := env.Services().(*registry.Node); ok && n != nil {
				return registry.Source{Node: n}
			}
			return nil
		}
		s, err := dnslb.NewServer(dnslb.Options{Logger: env.Logger.With("role", "dns"), Registry: env.Registry, Services: services})
		if err != nil {
			return nil, err
		}
		return dnsRole{s}, nil
	})
}

// dnsRole adapts the DNS data plane to Role. Load-balanced names read the
// health of the generation's pools, which the supervisor's monitors keep.
type dnsRole struct{ *dnslb.Server }

func (r dnsRole) Apply(cfg *config.Config, env Env) error {
	return r.Server.Apply(cfg.DNS, env.Pools) // nil section: no listeners
}

// DNS returns the DNS data plane, or nil when no config has asked for it.
func (s *Supervisor) DNS() *dnslb.Server {
	if r, ok := s.role("dns").(dnsRole); ok {
		return r.Server
	}
	return nil
}
