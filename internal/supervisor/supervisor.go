// Package supervisor runs strata's roles from one config: it builds pools,
// health monitors, the data planes and the admin listener, reloads them on
// SIGHUP or a change of the file, and shuts them down on SIGTERM.
//
// A reload builds the new generation completely before anything changes:
// a config that does not parse or validate, or a data plane that refuses
// it, is logged and the old generation keeps serving. Pools live across
// generations (matched by name), so health, counters and ejections survive
// a reload, and data planes swap their routing tables atomically while
// requests in flight finish on the tables they started with.
package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/admin"
	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/discovery"
	"github.com/strata-lb/strata/internal/health"
	"github.com/strata-lb/strata/internal/upstream"
)

// Source yields the config: its bytes and a name for error messages.
type Source struct {
	// Path is the file to read and watch; empty when Data is embedded.
	Path string
	// Name labels errors when Path is empty.
	Name string
	// Data is the embedded config, used when Path and Read are empty.
	Data []byte
	// Read, when set (and Path is empty), yields the config each time it
	// is loaded: a config service's current version (--config-from).
	Read func() []byte
}

func (s Source) read() (name string, data []byte, err error) {
	if s.Path == "" {
		if s.Read != nil {
			return s.Name, s.Read(), nil
		}
		return s.Name, s.Data, nil
	}
	data, err = os.ReadFile(s.Path)
	return s.Path, data, err
}

// Options configure a Supervisor.
type Options struct {
	Source  Source
	Logger  *slog.Logger
	Version string
	// Watch reloads when the config file changes on disk.
	Watch bool
}

// Supervisor owns one running strata process.
type Supervisor struct {
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry

	mu  sync.Mutex // serialises Start, Reload and Shutdown
	gen atomic.Pointer[generation]
	// roles holds the roles created so far, copied on write so that the
	// admin API and other roles read it without the supervisor's lock.
	roles   atomic.Pointer[map[string]Role]
	admin   *admin.Server
	adminCf config.Admin
	lastRaw []byte
	// adminAddr is the admin listener's bound address and applying the
	// config being applied, both read by listeners() from the registry
	// client's goroutines, without the lock.
	adminAddr atomic.Pointer[string]
	applying  atomic.Pointer[config.Config]
	watcher   *fsnotify.Watcher
	reloads   atomic.Uint64
	stopped   bool // Shutdown has begun; under mu
}

// generation is everything one config built that is not shared with the
// next: the pool set, the monitors and the passive ejectors.
type generation struct {
	cfg      *config.Config
	pools    map[string]*poolRuntime
	ordered  []*upstream.Pool
	reporter passiveReporter
}

// poolRuntime is a pool with the config it was built from and its monitor.
type poolRuntime struct {
	cfg     config.Pool
	pool    *upstream.Pool
	monitor *health.Monitor
	stop    context.CancelFunc
	done    chan struct{}
	passive *health.Passive
	// provider follows the pool's registry service (nil for static
	// pools). A reused pool keeps it while its registry section is
	// unchanged.
	provider *discovery.Provider
}

// New returns a supervisor; Start builds and starts the first generation.
func New(opts Options) *Supervisor {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Supervisor{opts: opts, log: opts.Logger, reg: prometheus.NewRegistry()}
}

// Registry is the Prometheus registry the admin listener serves.
func (s *Supervisor) Registry() *prometheus.Registry { return s.reg }

// Config returns the config in force.
func (s *Supervisor) Config() *config.Config { return s.gen.Load().cfg }

// Admin returns the admin listener (nil when off).
func (s *Supervisor) Admin() *admin.Server { return s.admin }

// Pools implements admin.Source.
func (s *Supervisor) Pools() []*upstream.Pool {
	if g := s.gen.Load(); g != nil {
		return g.ordered
	}
	return nil
}

// HealthDetail implements admin.Source.
func (s *Supervisor) HealthDetail(pool, backend string) any {
	g := s.gen.Load()
	if g == nil {
		return nil
	}
	pr := g.pools[pool]
	if pr == nil || pr.monitor == nil {
		return nil
	}
	st, ok := pr.monitor.Status(backend)
	if !ok {
		return nil
	}
	return st
}

// Load reads and checks the config without applying it.
func (s *Supervisor) load() (*config.Config, []byte, error) {
	name, data, err := s.opts.Source.read()
	if err != nil {
		return nil, nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := config.Parse(name, data)
	if err != nil {
		return nil, nil, err
	}
	return cfg, data, nil
}

// Start loads the config and starts every configured role.
func (s *Supervisor) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, raw, err := s.load()
	if err != nil {
		return err
	}
	if err := s.apply(cfg); err != nil {
		return err
	}
	s.lastRaw = raw
	if s.opts.Watch && s.opts.Source.Path != "" {
		if err := s.watch(); err != nil {
			s.log.Warn("config file watch off", "err", err)
		}
	}
	return nil
}

// Reload loads the config again and applies it; on any error the running
// generation stays as it was. An unchanged file is not applied again.
func (s *Supervisor) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		// A change that arrives while shutting down (a file event, a
		// config service's new version) must not start roles again.
		return errors.New("reload: shutting down")
	}
	cfg, raw, err := s.load()
	if err != nil {
		s.log.Error("reload refused, old config keeps serving", "err", err)
		return err
	}
	if bytes.Equal(raw, s.lastRaw) {
		s.log.Debug("reload: config unchanged")
		return nil
	}
	if err := s.apply(cfg); err != nil {
		s.log.Error("reload refused, old config keeps serving", "err", err)
		return err
	}
	s.lastRaw = raw
	s.reloads.Add(1)
	s.log.Info("config reloaded", "reloads", s.reloads.Load())
	return nil
}

// apply builds a generation from cfg and swaps it in. Nothing visible
// changes until every part of the new generation has been built.
func (s *Supervisor) apply(cfg *config.Config) error {
	old := s.gen.Load()
	s.applying.Store(cfg)
	defer s.applying.Store(nil)
	next := &generation{cfg: cfg, pools: make(map[string]*poolRuntime, len(cfg.Pools))}
	var fresh []*poolRuntime // built for this generation, torn down on failure
	fail := func(err error) error {
		for _, pr := range fresh {
			if pr.provider != nil {
				pr.provider.Stop()
			}
			pr.pool.Close()
		}
		return err
	}
	for _, pc := range cfg.Pools {
		pr, reused, err := s.buildPool(old, pc)
		if err != nil {
			return fail(fmt.Errorf("pool %s: %w", pc.Name, err))
		}
		if !reused {
			fresh = append(fresh, pr)
		}
		next.pools[pc.Name] = pr
		next.ordered = append(next.ordered, pr.pool)
	}
	if err := s.startProviders(cfg, fresh); err != nil {
		return fail(err)
	}
	next.reporter = passiveReporter(make(map[string]*health.Passive, len(next.pools)))
	for name, pr := range next.pools {
		if pr.passive != nil {
			next.reporter[name] = pr.passive
		}
	}

	if err := s.applyAdmin(cfg.Admin); err != nil {
		return fail(err)
	}
	// Data planes take the new tables last. If one refuses, the roles that
	// already took the new config get the old one back, reused pools get
	// their old backends back, and fresh pools are dropped.
	if err := s.applyRoles(old, next); err != nil {
		if old != nil {
			for name, pr := range next.pools {
				if old.pools[name] == pr {
					// A pool that follows the registry was not touched:
					// its provider changes only once the reload commits.
					if oc := old.cfgPool(name); oc.Registry == nil && pr.cfg.Registry == nil {
						if specs, err := specsOf(oc); err == nil {
							_ = pr.pool.Update(specs)
						}
					}
					pr.cfg = old.cfgPool(name)
				}
			}
		}
		return fail(err)
	}
	s.gen.Store(next)
	for _, pr := range fresh {
		s.startMonitor(pr)
	}
	for name, pr := range next.pools {
		if old != nil && old.pools[name] == pr {
			s.syncProvider(pr)
		}
		// The roles have bound their listeners only now; an instance that
		// the registry placed at one of them leaves the pool.
		if pr.provider != nil {
			pr.provider.Refilter()
		}
	}
	if old != nil {
		for name, pr := range old.pools {
			if next.pools[name] != pr {
				s.stopPool(pr)
			}
		}
	}
	return nil
}

// applyRoles gives cfg to every role that is running or that cfg wants,
// creating roles on first use. On an error it re-applies the old config to
// the roles that took the new one, so the reload is all or nothing.
func (s *Supervisor) applyRoles(old, next *generation) error {
	env := s.env(next)
	var done []Role
	for _, k := range roleKinds {
		r := s.role(k.name)
		if r == nil {
			if !k.wanted(next.cfg) {
				continue
			}
			var err error
			if r, err = k.create(env); err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			s.addRole(k.name, r)
		}
		if err := r.Apply(next.cfg, env); err != nil {
			if old != nil {
				oldEnv := s.env(old)
				for _, d := range done {
					if rerr := d.Apply(old.cfg, oldEnv); rerr != nil {
						s.log.Error("restoring the old config after a failed reload", "err", rerr)
					}
				}
			}
			return fmt.Errorf("%s: %w", k.name, err)
		}
		done = append(done, r)
	}
	return nil
}

// role returns the named role, or nil when no config has asked for it.
func (s *Supervisor) role(name string) Role { return s.allRoles()[name] }

func (s *Supervisor) allRoles() map[string]Role {
	if m := s.roles.Load(); m != nil {
		return *m
	}
	return nil
}

// addRole publishes a new role; only applyRoles calls it, under s.mu.
func (s *Supervisor) addRole(name string, r Role) {
	next := make(map[string]Role, len(s.allRoles())+1)
	for k, v := range s.allRoles() {
		next[k] = v
	}
	next[name] = r
	s.roles.Store(&next)
}

func (s *Supervisor) env(g *generation) Env {
	pools := make(map[string]*upstream.Pool, len(g.pools))
	for n, pr := range g.pools {
		pools[n] = pr.pool
	}
	return Env{Pools: pools, Passive: reporterRef{s}, Logger: s.log, Registry: s.reg, Services: s.ServiceRegistry}
}

func (g *generation) cfgPool(name string) config.Pool {
	for _, p := range g.cfg.Pools {
		if p.Name == name {
			return p
		}
	}
	return config.Pool{}
}

// buildPool reuses the old generation's pool of the same name when its
// algorithm, slow start and health check are unchanged (only backends
// differ, which Update applies in place); otherwise it builds a new one.
func (s *Supervisor) buildPool(old *generation, pc config.Pool) (*poolRuntime, bool, error) {
	specs, err := specsOf(pc)
	if err != nil {
		return nil, false, err
	}
	if old != nil {
		if pr := old.pools[pc.Name]; pr != nil && samePoolShape(pr.cfg, pc) {
			// A pool that follows the registry, or starts or stops
			// following it, gets its backends from syncProvider once the
			// reload commits.
			if pc.Registry == nil && pr.cfg.Registry == nil {
				if err := pr.pool.Update(specs); err != nil {
					return nil, false, err
				}
			}
			pr.cfg = pc
			return pr, true, nil
		}
	}
	b, err := balance.Builder(pc.LB, balance.Options{})
	if err != nil {
		return nil, false, err
	}
	pool := upstream.NewPool(pc.Name, upstream.Options{Builder: b, SlowStart: pc.SlowStart.D()})
	if err := pool.Update(specs); err != nil {
		return nil, false, err
	}
	pr := &poolRuntime{cfg: pc, pool: pool}
	if pc.Health != nil {
		chk, err := health.New(pc.Health)
		if err != nil {
			pool.Close()
			return nil, false, err
		}
		mo := health.MonitorOptionsFrom(pc.Health)
		mo.Logger = s.log // the monitor names the pool itself
		pr.monitor = health.NewMonitor(pool, chk, mo)
	}
	if pc.Passive != nil && pc.Passive.MaxFails != nil && *pc.Passive.MaxFails > 0 {
		po := health.PassiveOptionsFrom(pc.Passive)
		po.Logger = s.log // passive ejection names the pool itself
		pr.passive = health.NewPassive(pool, po)
	}
	return pr, false, nil
}

func samePoolShape(a, b config.Pool) bool {
	return a.LB == b.LB && a.SlowStart == b.SlowStart &&
		reflect.DeepEqual(a.Health, b.Health) && reflect.DeepEqual(a.Passive, b.Passive)
}

func specsOf(pc config.Pool) ([]upstream.Spec, error) {
	specs := make([]upstream.Spec, 0, len(pc.Backends))
	for _, bc := range pc.Backends {
		st, err := upstream.ParseState(bc.State)
		if err != nil {
			return nil, err
		}
		w := 1
		if bc.Weight != nil {
			w = *bc.Weight
		}
		specs = append(specs, upstream.Spec{Name: bc.Name, Addr: bc.Address, Weight: w, Zone: bc.Zone, Tags: bc.Tags, State: st})
	}
	return specs, nil
}

func (s *Supervisor) startMonitor(pr *poolRuntime) {
	if pr.monitor == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr.stop, pr.done = cancel, make(chan struct{})
	go func() {
		defer close(pr.done)
		pr.monitor.Run(ctx)
	}()
}

func (s *Supervisor) stopPool(pr *poolRuntime) {
	if pr.provider != nil {
		pr.provider.Stop()
	}
	if pr.stop != nil {
		pr.stop()
		<-pr.done
	}
	pr.pool.Close()
}

// applyAdmin starts the admin listener, or moves it when its config
// changed: the new one binds before the old one closes.
func (s *Supervisor) applyAdmin(ac config.Admin) error {
	if s.admin != nil && reflect.DeepEqual(ac, s.adminCf) {
		return nil
	}
	var next *admin.Server
	if ac.Listen != "off" {
		token, err := adminToken(ac)
		if err != nil {
			return err
		}
		next, err = admin.New(admin.Options{
			Listen:   ac.Listen,
			Token:    token,
			Pprof:    ac.Pprof == nil || *ac.Pprof,
			Source:   s,
			Registry: s.reg,
			Version:  s.opts.Version,
			Logger:   s.log.With("role", "admin"),
			Relayed:  s.relayed,
		})
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		if s.admin != nil && sameListen(s.adminCf.Listen, ac.Listen) {
			// Same address: the old listener must let go first.
			s.shutdownAdmin()
		}
		if err := next.Start(); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		s.log.Info("admin listening", "addr", next.Addr().String())
	}
	s.shutdownAdmin()
	s.admin, s.adminCf = next, ac
	if next != nil {
		a := next.Addr().String()
		s.adminAddr.Store(&a)
	} else {
		s.adminAddr.Store(nil)
	}
	return nil
}

// sameListen reports whether two listen addresses may collide: the same
// port on names that may resolve to the same interface (localhost and
// 127.0.0.1, or a wildcard host) cannot both be bound, so the old listener
// must let go before the new one binds.
func sameListen(a, b string) bool {
	_, pa, errA := net.SplitHostPort(a)
	_, pb, errB := net.SplitHostPort(b)
	return errA == nil && errB == nil && pa == pb && pa != "0"
}

func (s *Supervisor) shutdownAdmin() {
	if s.admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.admin.Shutdown(ctx); err != nil {
		s.log.Warn("admin shutdown", "err", err)
	}
	s.admin = nil
}

func adminToken(ac config.Admin) (string, error) {
	if ac.TokenFile == "" {
		return ac.Token, nil
	}
	tok, err := config.ReadSecretFile(ac.TokenFile)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	return tok, nil
}

// watch reloads when the config file changes. It watches the directory,
// not the file, because editors and config managers replace files by
// renaming a new one over the old, which ends a watch on the file itself.
func (s *Supervisor) watch() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	path, err := filepath.Abs(s.opts.Source.Path)
	if err != nil {
		w.Close()
		return err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return err
	}
	s.watcher = w
	go func() {
		// A save is often several events (truncate, write, rename); wait
		// for them to settle before reading the file.
		const settle = 200 * time.Millisecond
		var t *time.Timer
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) != path || ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) == 0 {
					continue
				}
				if t == nil {
					t = time.AfterFunc(settle, func() { _ = s.Reload() })
				} else {
					t.Reset(settle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("config watch", "err", err)
			}
		}
	}()
	return nil
}

// Shutdown stops accepting, lets in-flight work finish until ctx ends and
// stops every monitor. It returns the data planes' error if ctx ran out.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.watcher != nil {
		s.watcher.Close()
	}
	s.lameduck(ctx)
	// Registry-fed pools stop following first: the registry may be a role
	// of this very process, about to stop, and the pools keep their
	// backends for the work in flight anyway.
	if g := s.gen.Load(); g != nil {
		for _, pr := range g.pools {
			if pr.provider != nil {
				pr.provider.Stop()
				pr.provider = nil
			}
		}
	}
	// Roles stop together, so that their in-flight work shares one
	// deadline rather than each role waiting for the one before it.
	var (
		errs []error
		emu  sync.Mutex
		wg   sync.WaitGroup
	)
	for name, r := range s.allRoles() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Shutdown(ctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if g := s.gen.Load(); g != nil {
		for _, pr := range g.pools {
			s.stopPool(pr)
		}
	}
	s.shutdownAdmin()
	return errors.Join(errs...)
}

// lameduck tells the roles that can say so that this process is stopping,
// then keeps serving for the config's shutdown_delay (or until ctx ends),
// so that balancers in front see failing health checks and move away
// before the listeners close.
func (s *Supervisor) lameduck(ctx context.Context) {
	g := s.gen.Load()
	if g == nil || g.cfg.ShutdownDelay <= 0 {
		return
	}
	for _, r := range s.allRoles() {
		if l, ok := r.(Lameducker); ok {
			l.Lameduck()
		}
	}
	s.log.Info("lameduck: still serving, health checks fail", "for", g.cfg.ShutdownDelay.D().String())
	t := time.NewTimer(g.cfg.ShutdownDelay.D())
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// passiveReporter sends a data plane's outcome to the passive ejector of
// the backend's pool. It is immutable once built, so data planes read it
// without a lock.
type passiveReporter map[string]*health.Passive

// reporterRef finds the current generation's reporter on every call, so
// the data plane keeps one Reporter across reloads.
type reporterRef struct{ s *Supervisor }

func (r reporterRef) Success(b *upstream.Backend) {
	if g := r.s.gen.Load(); g != nil {
		if p := g.reporter[b.Pool]; p != nil {
			p.Success(b)
		}
	}
}

func (r reporterRef) Failure(b *upstream.Backend) {
	if g := r.s.gen.Load(); g != nil {
		if p := g.reporter[b.Pool]; p != nil {
			p.Failure(b)
		}
	}
}
