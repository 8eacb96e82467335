package supervisor

import (
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/l7"
)

func init() {
	registerRole("l7", func(c *config.Config) bool { return c.L7 != nil }, func(env Env) (Role, error) {
		opts := l7.Options{Logger: env.Logger, Passive: env.Passive}
		if env.Registry != nil {
			opts.Registry = env.Registry
		}
		return l7Role{l7.NewServer(opts)}, nil
	})
}

// l7Role adapts the HTTP data plane to Role.
type l7Role struct{ *l7.Server }

func (r l7Role) Apply(cfg *config.Config, env Env) error {
	// Each pool says how the l7 role speaks to its backends.
	protocols := make(map[string]string, len(cfg.Pools))
	for _, p := range cfg.Pools {
		protocols[p.Name] = p.Protocol
	}
	return r.Server.ApplyWith(cfg.L7, env.Pools, protocols) // nil section: no listeners
}

// L7 returns the HTTP data plane, or nil when no config has asked for it.
func (s *Supervisor) L7() *l7.Server {
	if r, ok := s.role("l7").(l7Role); ok {
		return r.Server
	}
	return nil
}
