package supervisor

import (
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/l7"
)

func init() {
	registerRole("l7", func(c *config.Config) bool { return c.L7 != nil }, func(env Env) (Role, error) {
		return l7Role{l7.NewServer(l7.Options{Logger: env.Logger, Passive: env.Passive})}, nil
	})
}

// l7Role adapts the HTTP data plane to Role.
type l7Role struct{ *l7.Server }

func (r l7Role) Apply(cfg *config.Config, env Env) error {
	return r.Server.Apply(cfg.L7, env.Pools) // nil section: no listeners
}

// L7 returns the HTTP data plane, or nil when no config has asked for it.
func (s *Supervisor) L7() *l7.Server {
	if r, ok := s.role("l7").(l7Role); ok {
		return r.Server
	}
	return nil
}
