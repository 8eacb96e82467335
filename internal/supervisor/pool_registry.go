package supervisor

import (
	"fmt"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/discovery"
)

// firstAnswerWait bounds how long a start or reload waits for new
// registry-fed pools to hear from the registry, so that the data planes
// begin with backends rather than answering 503 for the first
// milliseconds. An unreachable registry costs at most this much.
const firstAnswerWait = time.Second

// startProviders starts a registry provider for every fresh pool that
// follows the registry, then waits (at most firstAnswerWait) for their
// first answers. It does not wait when this process runs a registry
// itself: that registry starts with the roles, after the pools, and may
// be the very one they follow.
func (s *Supervisor) startProviders(cfg *config.Config, fresh []*poolRuntime) error {
	var started []*discovery.Provider
	for _, pr := range fresh {
		if pr.cfg.Registry == nil {
			continue
		}
		p, err := discovery.Start(pr.pool, *pr.cfg.Registry, s.discoveryOptions())
		if err != nil {
			return fmt.Errorf("pool %s: %w", pr.cfg.Name, err)
		}
		pr.provider = p
		started = append(started, p)
	}
	if cfg.Registry != nil || len(started) == 0 {
		return nil
	}
	deadline := time.NewTimer(firstAnswerWait)
	defer deadline.Stop()
	for _, p := range started {
		select {
		case <-p.Ready():
		case <-deadline.C:
			s.log.Warn("registry not answering yet; registry-fed pools start empty and fill when it answers")
			return nil
		}
	}
	return nil
}

// syncProvider brings a reused pool's provider in line with its config
// once a reload has committed: an unchanged registry section keeps its
// provider (and the backends it found); a changed one replaces it, the
// pool keeping its backends until the new provider's first answer; a pool
// that went back to static backends gets them.
func (s *Supervisor) syncProvider(pr *poolRuntime) {
	rc := pr.cfg.Registry
	if pr.provider == nil && rc == nil {
		return // static before and after: buildPool updated it
	}
	if pr.provider != nil && pr.provider.Same(rc) {
		return
	}
	if pr.provider != nil {
		pr.provider.Stop()
		pr.provider = nil
	}
	if rc == nil {
		if specs, err := specsOf(pr.cfg); err == nil {
			if err := pr.pool.Update(specs); err != nil {
				s.log.Error("pool back to static backends", "pool", pr.cfg.Name, "err", err)
			}
		}
		return
	}
	p, err := discovery.Start(pr.pool, *rc, s.discoveryOptions())
	if err != nil {
		// Validation has checked the section, so this is not expected;
		// the pool keeps its backends and the error is visible.
		s.log.Error("following the registry", "pool", pr.cfg.Name, "err", err)
		return
	}
	pr.provider = p
}

// discoveryOptions are the options of every provider: the supervisor's
// logger, and this process's listeners, which no pool may take as a
// backend.
func (s *Supervisor) discoveryOptions() discovery.Options {
	return discovery.Options{Logger: s.log.With("role", "discovery"), Self: s.listeners}
}
