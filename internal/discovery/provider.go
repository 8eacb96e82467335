package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
	"github.com/strata-lb/strata/pkg/client"
)

// Options tune a Provider; the zero value is what the supervisor uses.
type Options struct {
	// Logger receives the provider's and the SDK's logs (default
	// slog.Default()).
	Logger *slog.Logger
	// Wait is how long one blocking query waits for a change before it
	// asks again (default 30s). A change answers at once whatever it is.
	Wait time.Duration
	// Self returns the addresses this process listens on (its admin API,
	// its registry, its own data planes); an unspecified IP stands for
	// every address of the machine. An instance at one of them never
	// becomes a backend: a pool that sent client requests to its own
	// process's admin API would hand the control plane to anyone who can
	// register an instance. Nil: no listener is known.
	Self func() []netip.AddrPort
}

// Provider follows one registry service and keeps a pool's backends equal
// to its usable instances.
type Provider struct {
	cfg   config.PoolRegistry
	pool  *upstream.Pool
	c     *client.Client
	log   *slog.Logger
	allow []netip.Prefix // cfg.Allow parsed; empty: config.DefaultAllows
	self  func() []netip.AddrPort

	ready chan struct{} // closed once the pool has had its first answer
	once  sync.Once

	mu      sync.Mutex
	stopped bool
	// sent holds what the registry last said of each backend, so that a
	// drain or a weight set through the admin API (which the pool holds
	// and the registry does not know) survives the next registry change.
	sent map[string]upstream.Spec
	// last is the registry's last answer, kept so that Refilter can apply
	// it again once this process's listeners have changed.
	last []client.Instance
	// refused holds the addresses left out of the last answer, so that
	// each is logged once rather than on every change of the service.
	refused map[string]bool
}

// Start makes a provider for pool and starts following cfg's service. It
// fails only on a config the SDK refuses; an unreachable registry is
// retried in the background, the pool keeping what it has meanwhile.
func Start(pool *upstream.Pool, cfg config.PoolRegistry, opts Options) (*Provider, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("pool", pool.Name(), "follows", cfg.Namespace+"/"+cfg.Group+"/"+cfg.Service)
	token := cfg.Token
	if cfg.TokenFile != "" {
		var err error
		if token, err = config.ReadSecretFile(cfg.TokenFile); err != nil {
			return nil, fmt.Errorf("following registry service %s: token_file: %w", cfg.Service, err)
		}
	}
	c, err := client.New(client.Config{
		Servers:   cfg.Servers,
		Namespace: cfg.Namespace,
		Group:     cfg.Group,
		Token:     token,
		CacheDir:  cfg.CacheDir,
		Wait:      opts.Wait,
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("following registry service %s: %w", cfg.Service, err)
	}
	allow := make([]netip.Prefix, 0, len(cfg.Allow))
	for _, a := range cfg.Allow {
		pr, err := config.ParsePrefix(a)
		if err != nil {
			c.Close(context.Background())
			return nil, fmt.Errorf("following registry service %s: allow: %w", cfg.Service, err)
		}
		allow = append(allow, pr)
	}
	p := &Provider{cfg: cfg, pool: pool, c: c, log: log, allow: allow, self: opts.Self, ready: make(chan struct{}), sent: map[string]upstream.Spec{}}
	if err := c.Subscribe(cfg.Service, p.apply); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("following registry service %s: %w", cfg.Service, err)
	}
	return p, nil
}

// Config returns the section the provider follows, so a reload can tell
// whether it changed.
func (p *Provider) Config() config.PoolRegistry { return p.cfg }

// Same reports whether the provider follows exactly cfg.
func (p *Provider) Same(cfg *config.PoolRegistry) bool {
	return cfg != nil && reflect.DeepEqual(p.cfg, *cfg)
}

// Ready is closed once the pool has taken its first answer, from a
// registry server or from the disk cache.
func (p *Provider) Ready() <-chan struct{} { return p.ready }

// Stop ends the subscription. The pool keeps its backends; the caller
// closes or refills it.
func (p *Provider) Stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.c.Close(ctx)
}

// Refilter applies the registry's last answer again. The supervisor calls
// it when this process's listeners may have changed (a start or a reload
// binds them after the pools have started following the registry), so
// that an instance registered at a listener's address leaves the pool as
// soon as the listener exists.
func (p *Provider) Refilter() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last != nil {
		p.applyLocked(p.last)
	}
}

// apply is the SDK's callback: the service's instances after a change.
func (p *Provider) apply(ins []client.Instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applyLocked(ins)
}

// admit keeps the instances whose addresses may become backends, logging
// each address it newly leaves out.
func (p *Provider) admit(ins []client.Instance) []client.Instance {
	out := make([]client.Instance, 0, len(ins))
	refused := map[string]bool{}
	var self selfMatcher
	if p.self != nil {
		self = newSelfMatcher(p.self())
	}
	for _, in := range ins {
		why := Refusal(in, p.allow, self.has)
		if why == "" {
			out = append(out, in)
			continue
		}
		addr := in.Addr()
		refused[addr] = true
		if !p.refused[addr] {
			p.log.Warn("registry instance refused as a backend", "addr", addr, "reason", why)
		}
	}
	p.refused = refused
	return out
}

// Refusal says why an instance's address may not become a backend of a
// pool with the allow list allow (empty: config.DefaultAllows) in a
// process that listens where self says, or "" when it may.
func Refusal(in client.Instance, allow []netip.Prefix, self func(netip.AddrPort) bool) string {
	a, err := netip.ParseAddr(in.IP)
	if err != nil {
		return "not an IP address"
	}
	a = a.Unmap().WithZone("")
	if in.Port <= 0 || in.Port > 65535 {
		return "no valid port"
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return "an unspecified or multicast address is never a backend"
	}
	if !config.AddrAllowed(a, allow) {
		if len(allow) == 0 {
			return "outside the default allow (loopback and link-local addresses are refused; set pools[].registry.allow)"
		}
		return "outside pools[].registry.allow"
	}
	if self != nil && self(netip.AddrPortFrom(a, uint16(in.Port))) {
		return "a listener of this process"
	}
	return ""
}

// selfMatcher tells whether an address reaches one of this process's
// listeners.
type selfMatcher struct {
	exact map[netip.AddrPort]bool
	// wild holds the ports of listeners bound to every address; local
	// holds the machine's addresses, read once per answer, for them.
	wild  map[uint16]bool
	local map[netip.Addr]bool
}

func newSelfMatcher(ls []netip.AddrPort) selfMatcher {
	m := selfMatcher{exact: map[netip.AddrPort]bool{}, wild: map[uint16]bool{}}
	for _, l := range ls {
		a := l.Addr().Unmap().WithZone("")
		if a.IsUnspecified() {
			m.wild[l.Port()] = true
			continue
		}
		m.exact[netip.AddrPortFrom(a, l.Port())] = true
	}
	if len(m.wild) > 0 {
		m.local = map[netip.Addr]bool{}
		if as, err := net.InterfaceAddrs(); err == nil {
			for _, ia := range as {
				if pn, ok := ia.(*net.IPNet); ok {
					if a, ok := netip.AddrFromSlice(pn.IP); ok {
						m.local[a.Unmap()] = true
					}
				}
			}
		}
	}
	return m
}

// has reports whether ap (unmapped, without a zone) is a listener's.
func (m selfMatcher) has(ap netip.AddrPort) bool {
	if m.exact[ap] {
		return true
	}
	a := ap.Addr()
	return m.wild[ap.Port()] && (a.IsLoopback() || m.local[a])
}

// applyLocked turns an answer into the pool's backends; p.mu is held.
func (p *Provider) applyLocked(ins []client.Instance) {
	if p.stopped {
		return
	}
	p.last = ins
	specs := Specs(p.admit(ins), &p.cfg)
	cur := p.pool.Snapshot()
	sent := make(map[string]upstream.Spec, len(specs))
	for i := range specs {
		s := &specs[i]
		sent[s.Name] = *s
		last, known := p.sent[s.Name]
		b := cur.Lookup(s.Name)
		if !known || b == nil {
			continue
		}
		// The pool differs from what the registry said last time: someone
		// (the admin API, the dashboard) changed it here on purpose.
		if b.State != last.State {
			s.State = b.State
		}
		if b.Weight != last.Weight {
			s.Weight = b.Weight
		}
	}
	if err := p.pool.Update(specs); err != nil {
		// Specs are named by unique ip:port and weights are never
		// negative, so this is a bug, not bad input; keep the last set.
		p.log.Error("registry answer refused by the pool", "err", err)
		return
	}
	p.sent = sent
	p.log.Info("pool follows registry", "backends", len(specs), "instances", len(ins))
	p.once.Do(func() { close(p.ready) })
}

// Specs turns a registry answer into pool specs: the healthy, enabled
// instances of cfg's clusters whose metadata match its selector, named by
// ip:port, with the cluster as zone, the metadata as tags and the weight ×
// 100 (registry weights are decimals; the SDK's Pick scales them alike).
// The answer is sorted by name.
func Specs(ins []client.Instance, cfg *config.PoolRegistry) []upstream.Spec {
	specs := make([]upstream.Spec, 0, len(ins))
	seen := make(map[string]bool, len(ins))
	for _, in := range ins {
		// A protected answer (the registry's protection threshold) holds
		// unhealthy instances too; a pool has its own health checks and
		// passive ejection, and is told only of the instances believed
		// to work.
		if !in.Healthy || !in.Enabled {
			continue
		}
		if len(cfg.Clusters) > 0 && !contains(cfg.Clusters, in.Cluster) {
			continue
		}
		if !matches(in.Metadata, cfg.Selector) {
			continue
		}
		addr := in.Addr()
		if seen[addr] {
			// One ip:port registered in two clusters is one backend.
			continue
		}
		seen[addr] = true
		specs = append(specs, upstream.Spec{Name: addr, Addr: addr, Weight: weightOf(in.Weight), Zone: in.Cluster, Tags: copyTags(in.Metadata), State: upstream.StateUp})
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs
}

// weightOf turns a registry weight into a pool weight, keeping two
// decimals: 1 → 100, 0.5 → 50, 0.001 → 1, 0 → 0.
func weightOf(w float64) int {
	if w <= 0 || math.IsNaN(w) {
		return 0
	}
	if w > 1e6 {
		w = 1e6
	}
	return max(1, int(math.Round(w*100)))
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func matches(md, sel map[string]string) bool {
	for k, v := range sel {
		if got, ok := md[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func copyTags(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}
