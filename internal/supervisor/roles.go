package supervisor

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/registry"
	"github.com/strata-lb/strata/internal/upstream"
)

// Role is one data plane of strata: l7, l4, dns, registry. Each lives in
// its own package; a small adapter file here (role_<name>.go) registers it.
type Role interface {
	// Apply makes the role serve what cfg asks of it, with the pools of
	// the generation being built. A role whose section is absent from cfg
	// stops serving. A failed Apply must leave the role as it was: the
	// supervisor then re-applies the old config to the roles that already
	// took the new one, so a reload is all or nothing.
	Apply(cfg *config.Config, env Env) error
	// Shutdown stops accepting and lets work in flight finish until ctx
	// ends.
	Shutdown(ctx context.Context) error
}

// Lameducker is a Role that can say it is stopping while it still serves
// (l7's health_path answers 503), so balancers in front of this process
// stop sending before its listeners close. Shutdown calls it first and
// waits the config's shutdown_delay.
type Lameducker interface {
	Lameduck()
}

// Env is what a role gets from the supervisor besides its config.
type Env struct {
	// Pools are the generation's pools by name.
	Pools map[string]*upstream.Pool
	// Passive takes the outcome of every connection or request for
	// passive ejection; it dispatches by the backend's pool.
	Passive Reporter
	Logger  *slog.Logger
	// Registry is where the role registers its Prometheus collectors,
	// once, when it is created.
	Registry *prometheus.Registry
	// Services returns the service registry running in this process, or
	// nil. Roles ask on every use: roles are created and applied one after
	// another, so the registry may start after the role that reads it.
	Services func() registry.Resolver
}

// Reporter receives data-plane outcomes for passive ejection.
type Reporter interface {
	Success(b *upstream.Backend)
	Failure(b *upstream.Backend)
}

// roleKind describes a role the supervisor can run.
type roleKind struct {
	name string
	// wanted reports whether cfg configures the role; a role is created
	// the first time a config wants it and lives until shutdown.
	wanted func(cfg *config.Config) bool
	create func(env Env) (Role, error)
}

// roleKinds lists the roles in the order they are applied and started.
var roleKinds []roleKind

func registerRole(name string, wanted func(*config.Config) bool, create func(Env) (Role, error)) {
	roleKinds = append(roleKinds, roleKind{name: name, wanted: wanted, create: create})
}
