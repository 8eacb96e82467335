package supervisor

import (
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/registry"
)

func init() {
	registerRole("registry", func(c *config.Config) bool { return c.Registry != nil }, func(env Env) (Role, error) {
		srv := registry.NewServer(env.Logger.With("role", "registry"))
		if env.Registry != nil {
			if err := env.Registry.Register(srv.Collector()); err != nil {
				return nil, err
			}
		}
		return registryRole{srv}, nil
	})
}

// registryRole adapts the service registry to Role.
type registryRole struct{ *registry.Server }

func (r registryRole) Apply(cfg *config.Config, _ Env) error {
	return r.Server.Apply(cfg.Registry) // nil section: the node stops
}

// ServiceRegistry returns the registry's query interface for other roles (the
// dns role answers <service>.<group>.<namespace>.svc.<domain> from it), or
// nil when no registry runs in this process.
func (s *Supervisor) ServiceRegistry() registry.Resolver {
	r, ok := s.role("registry").(registryRole)
	if !ok {
		return nil
	}
	if n := r.Server.Node(); n != nil {
		return n
	}
	return nil
}
