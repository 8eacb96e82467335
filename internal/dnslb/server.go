package dnslb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/discovery"
	"github.com/strata-lb/strata/internal/upstream"
)

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// Registry receives the role's Prometheus collectors; none when nil.
	Registry prometheus.Registerer
	// Seed seeds the workers' random choices (rotation, weighted picks);
	// tests fix it, 0 takes a random seed.
	Seed uint64
	// Services returns the registry of this process that dns.registry
	// answers from when it lists no servers, or nil while there is none.
	// It is called again and again, so the registry may start after the
	// DNS role, stop, or be replaced.
	Services func() ServiceSource
}

// Server is the DNS data plane. Apply gives it a config; it serves until
// Shutdown.
type Server struct {
	opts  Options
	log   *slog.Logger
	tab   atomic.Pointer[table]
	stats *statsRegistry

	mu         sync.Mutex            // serialises Apply and Shutdown
	svc        *svcView              // the running registry view, if any
	remote     *discovery.Namespaces // dns.registry with servers
	listeners  map[string]*listener
	limits     atomic.Pointer[tcpLimits]
	subscribed map[*upstream.Pool]bool
	seq        atomic.Uint64 // worker shards
}

// tcpLimits are read by TCP connections on every message, so a reload
// changes them for connections already open.
type tcpLimits struct {
	maxConns int
	idle     time.Duration
}

// NewServer returns a server with no zones and no listeners.
func NewServer(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
	}
	s := &Server{opts: opts, log: opts.Logger, stats: newStatsRegistry(),
		listeners: map[string]*listener{}, subscribed: map[*upstream.Pool]bool{}}
	if opts.Registry != nil {
		if err := opts.Registry.Register(s.stats); err != nil {
			return nil, fmt.Errorf("registering dns metrics: %w", err)
		}
	}
	return s, nil
}

// Apply serves what dc asks, with the pools of the generation. A nil dc
// stops every listener. On error nothing changes.
func (s *Server) Apply(dc *config.DNS, pools map[string]*upstream.Pool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dc == nil {
		s.tab.Store(nil)
		s.swapSvc(nil, nil)
		s.swapRemote(nil)
		for k, l := range s.listeners {
			l.close()
			delete(s.listeners, k)
		}
		return nil
	}
	t, err := buildTable(dc, pools, s.stats)
	if err != nil {
		return err
	}
	get, remote, err := s.serviceSource(dc.Registry)
	if err != nil {
		return err
	}
	sockets := dc.UDPSockets
	if sockets == 0 {
		sockets = runtime.GOMAXPROCS(0)
	}
	// Open the new listeners first; keep the ones whose address and
	// socket count stay. A failure closes only what this call opened.
	next := map[string]*listener{}
	var opened []*listener
	for _, addr := range dc.Listen {
		if l := s.keep(addr, sockets); l != nil {
			next[addr] = l
			continue
		}
		l, err := s.listen(addr, sockets)
		if err != nil {
			for _, o := range opened {
				o.close()
			}
			if remote != nil && remote != s.remote {
				remote.Close()
			}
			return fmt.Errorf("dns: listening on %s: %w", addr, err)
		}
		opened = append(opened, l)
		next[addr] = l
	}
	s.limits.Store(&tcpLimits{maxConns: dc.TCPMaxConns, idle: dc.TCPIdleTimeout.D()})
	if t.svc != nil {
		// Serve the registry's names from the first query on: build them
		// now when the registry is already there.
		t.svc.log = s.log
		if src := get(); src != nil {
			t.svc.rebuild(src)
		}
	}
	s.tab.Store(t)
	s.swapSvc(t.svc, get)
	s.swapRemote(remote)
	kept := map[*listener]bool{}
	for _, l := range next {
		kept[l] = true
	}
	for _, l := range s.listeners {
		if !kept[l] {
			l.close()
		}
	}
	s.listeners = next
	for _, o := range opened {
		o.serve()
		s.log.Info("dns listening", "addr", o.addr())
	}
	s.watchPools(t.pools)
	return nil
}

// keep returns the running listener for addr, matched by the address
// written in the config or the one it is bound to (so "host:0" followed by
// the port it got is the same listener), when its socket count stays.
func (s *Server) keep(addr string, sockets int) *listener {
	for written, l := range s.listeners {
		if (written == addr || l.addr() == addr) && l.sockets == sockets {
			return l
		}
	}
	return nil
}

// watchPools counts, per pool that a balanced name uses, addresses that
// leave the ready set. Pools live across reloads, so each is subscribed
// once.
func (s *Server) watchPools(pools map[string]*upstream.Pool) {
	for name, p := range pools {
		if s.subscribed[p] {
			continue
		}
		s.subscribed[p] = true
		ctr := s.stats.removal(name)
		prev := map[string]bool{}
		for _, b := range p.Snapshot().Ready {
			prev[b.Name] = true
		}
		p.Subscribe(func(snap *upstream.Snapshot) {
			now := make(map[string]bool, len(snap.Ready))
			for _, b := range snap.Ready {
				now[b.Name] = true
			}
			for n := range prev {
				if !now[n] {
					ctr.Add(1)
				}
			}
			prev = now
		})
	}
}

// Addrs returns the bound address of every listener (UDP and TCP share
// it), in no particular order.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.listeners {
		out = append(out, l.addr())
	}
	return out
}

// Shutdown stops every listener and waits for TCP connections to finish
// their current message, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	ls := s.listeners
	s.listeners = map[string]*listener{}
	s.swapSvc(nil, nil)
	s.swapRemote(nil)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, l := range ls {
			l.close()
		}
		for _, l := range ls {
			l.wait()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, l := range ls {
			l.closeConns()
		}
		return errors.Join(ctx.Err())
	}
}
