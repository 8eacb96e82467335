package supervisor

import (
	"context"
	"net/http"

	"github.com/strata-lb/strata/internal/admin"
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/l4"
)

func init() {
	registerRole("l4", func(c *config.Config) bool { return c.L4 != nil }, func(env Env) (Role, error) {
		srv, err := l4.NewServer(l4.Options{Logger: env.Logger, Passive: env.Passive, Registry: env.Registry})
		if err != nil {
			return nil, err
		}
		return l4Role{srv}, nil
	})
}

// l4Role adapts the TCP/UDP data plane to Role.
type l4Role struct{ *l4.Server }

func (r l4Role) Apply(cfg *config.Config, env Env) error {
	return r.Server.Apply(cfg.L4, env.Pools) // nil section: no listeners
}

func (r l4Role) Shutdown(ctx context.Context) error { return r.Server.Shutdown(ctx) }

// L4 returns the TCP/UDP data plane, or nil when no config has asked for
// it.
func (s *Supervisor) L4() *l4.Server {
	if r, ok := s.role("l4").(l4Role); ok {
		return r.Server
	}
	return nil
}

// AdminRoutes implements admin.RouteSource: the l4 connection table,
// persistence table, service statistics and BGP sessions, and the
// node's drain and undrain.
func (s *Supervisor) AdminRoutes() []admin.Route {
	serve := func(h func(*l4.Server) http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			srv := s.L4()
			if srv == nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				w.Write([]byte("{\"error\": \"the l4 role is not running\"}\n"))
				return
			}
			h(srv)(w, r)
		}
	}
	return []admin.Route{
		{Path: l4.PathServices, Handler: serve(func(x *l4.Server) http.HandlerFunc { return x.HandleServices })},
		{Path: l4.PathConns, Handler: serve(func(x *l4.Server) http.HandlerFunc { return x.HandleConns })},
		{Path: l4.PathPersistence, Handler: serve(func(x *l4.Server) http.HandlerFunc { return x.HandlePersistence })},
		{Path: l4.PathBGP, Handler: serve(func(x *l4.Server) http.HandlerFunc { return x.HandleBGP })},
		{Path: l4.PathDrain, Method: http.MethodPost, Handler: serve(func(x *l4.Server) http.HandlerFunc { return x.HandleDrain(true) })},
		{Path: l4.PathUndrain, Method: http.MethodPost, Handler: serve(func(x *l4.Server) http.HandlerFunc { return x.HandleDrain(false) })},
	}
}

// BGPStatus implements admin.StatusSource: the l4 speaker's state, or
// nil when the node runs none.
func (s *Supervisor) BGPStatus() any {
	srv := s.L4()
	if srv == nil {
		return nil
	}
	st := srv.BGPStatus()
	if !st.Enabled {
		return nil
	}
	return st
}

// Lameduck withdraws the l4 VIPs from BGP while the process still serves.
func (r l4Role) Lameduck() { r.Server.Lameduck() }
