package client

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/health"
	"github.com/strata-lb/strata/internal/upstream"
)

// subscription follows one service with blocking queries and feeds a pool
// that Pick reads.
type subscription struct {
	service string
	pool    *upstream.Pool
	passive *health.Passive
	cancel  context.CancelFunc
	ready   chan struct{} // closed at the first answer (from a server or the cache)
	once    sync.Once

	// deliver orders the calls of fns: a subscriber's first call (the
	// answer known when it subscribed) and every later one reach it in
	// the order the answers came, never an older one after a newer.
	deliver   sync.Mutex
	mu        sync.Mutex
	instances []Instance
	fns       []func([]Instance)
}

// answer is the part of the registry's query answer the client reads.
type answer struct {
	Index     uint64     `json:"index"`
	Instances []Instance `json:"instances"`
	Protected bool       `json:"protected"`
}

func (c *Client) subscription(service string) (*subscription, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if s := c.subs[service]; s != nil {
		return s, nil
	}
	b, err := balance.Builder(c.cfg.Algorithm, balance.Options{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscription{service: service, pool: upstream.NewPool(service, upstream.Options{Builder: b}), cancel: cancel, ready: make(chan struct{})}
	s.passive = health.NewPassive(s.pool, health.PassiveOptions{MaxFails: c.cfg.MaxFails, BaseEjection: c.cfg.BaseEjection, Logger: c.log})
	c.subs[service] = s
	if cached, ok := c.readCache(service); ok {
		s.update(cached)
	}
	c.wg.Add(1)
	go c.follow(ctx, s)
	return s, nil
}

// update publishes a new instance list to the pool and the callbacks.
func (s *subscription) update(ins []Instance) {
	specs := make([]upstream.Spec, 0, len(ins))
	for _, in := range ins {
		specs = append(specs, upstream.Spec{Name: in.Addr(), Addr: in.Addr(), Weight: weightOf(in.Weight), Zone: in.Cluster, Tags: in.Metadata})
	}
	s.deliver.Lock()
	defer s.deliver.Unlock()
	s.pool.Update(specs)
	s.mu.Lock()
	s.instances = ins
	fns := append([]func([]Instance){}, s.fns...)
	s.mu.Unlock()
	for _, fn := range fns {
		fn(ins)
	}
	s.once.Do(func() { close(s.ready) })
}

// follow long-polls the service until ctx ends, backing off while every
// server fails (the pool keeps its last answer meanwhile).
func (c *Client) follow(ctx context.Context, s *subscription) {
	defer c.wg.Done()
	defer s.pool.Close()
	q := url.Values{"wait": {c.cfg.Wait.String()}}
	if c.cfg.Zone != "" {
		q.Set("zone", c.cfg.Zone)
	}
	if c.cfg.Caller != "" {
		q.Set("caller", c.cfg.Caller)
	}
	for k, v := range c.cfg.Tags {
		q.Add("tag", k+"="+v)
	}
	path := "/v1/registry/services/" + url.PathEscape(c.cfg.Namespace) + "/" + url.PathEscape(c.cfg.Group) + "/" + url.PathEscape(s.service)
	var index uint64
	first := true
	backoff := 100 * time.Millisecond
	failures := 0
	for ctx.Err() == nil {
		if !first {
			q.Set("index", strconv.FormatUint(index, 10))
		}
		var a answer
		if err := c.do(ctx, "GET", path+"?"+q.Encode(), nil, &a); err != nil {
			if ctx.Err() != nil {
				return
			}
			// One failure is often a registry still starting (in the
			// same process, say) and is retried in 100ms; a failure
			// that lasts is worth a warning.
			failures++
			level := slog.LevelWarn
			if failures == 1 {
				level = slog.LevelDebug
			}
			c.log.Log(ctx, level, "registry client: following service", "service", s.service, "err", err, "attempt", failures)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff, failures = 100*time.Millisecond, 0
		if first || a.Index != index {
			s.update(a.Instances)
			c.writeCache(s.service, a.Instances)
		}
		first, index = false, a.Index
	}
}

// Subscribe calls fn with the service's instances now (once known) and
// after every change, until Close, one call at a time and in the order
// the answers came. fn must not call Subscribe for the same service.
func (c *Client) Subscribe(service string, fn func([]Instance)) error {
	s, err := c.subscription(service)
	if err != nil {
		return err
	}
	s.deliver.Lock()
	defer s.deliver.Unlock()
	s.mu.Lock()
	s.fns = append(s.fns, fn)
	cur, known := s.instances, s.instances != nil
	s.mu.Unlock()
	if known {
		fn(cur)
	}
	return nil
}

// Instances returns the service's current instances, waiting for the
// first answer until ctx ends.
func (c *Client) Instances(ctx context.Context, service string) ([]Instance, error) {
	s, err := c.subscription(service)
	if err != nil {
		return nil, err
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instances, nil
}

// Endpoint is an instance picked for one call. Report its outcome with Done.
type Endpoint struct {
	b *upstream.Backend
	s *subscription
}

// Addr is the instance's ip:port.
func (e *Endpoint) Addr() string { return e.b.Addr }

// Metadata are the instance's labels.
func (e *Endpoint) Metadata() map[string]string { return e.b.Tags }

// Pick chooses an instance of service with the configured algorithm;
// key feeds the hashing algorithms (maglev, ketama, sh …). It waits for the
// first answer about the service until ctx ends.
func (c *Client) Pick(ctx context.Context, service string, key uint64) (*Endpoint, error) {
	s, err := c.subscription(service)
	if err != nil {
		return nil, err
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b := s.pool.Pick(key)
	if b == nil {
		return nil, ErrNoInstance
	}
	b.Active.Add(1)
	b.Requests.Add(1)
	return &Endpoint{b: b, s: s}, nil
}

// Done reports the outcome of a call to e: failures feed passive
// ejection, which keeps an instance that keeps failing out for a while.
func (c *Client) Done(e *Endpoint, err error) {
	if e == nil {
		return
	}
	e.b.Active.Add(-1)
	if err != nil {
		e.b.Failures.Add(1)
		e.s.passive.Failure(e.b)
		return
	}
	e.s.passive.Success(e.b)
}

// cachePath is where the answer of service is kept.
func (c *Client) cachePath(service string) string {
	return filepath.Join(c.cfg.CacheDir, url.PathEscape(c.cfg.Namespace), url.PathEscape(c.cfg.Group), url.PathEscape(service)+".json")
}

// writeCache saves an answer, atomically, so a crash mid-write leaves the
// previous one.
func (c *Client) writeCache(service string, ins []Instance) {
	if c.cfg.CacheDir == "" {
		return
	}
	p := c.cachePath(service)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.log.Warn("registry client: cache", "err", err)
		return
	}
	// Sorted for a stable file, on a copy: ins is what subscribers got.
	ins = slices.Clone(ins)
	sort.Slice(ins, func(i, j int) bool { return ins[i].Addr() < ins[j].Addr() })
	b, _ := json.Marshal(ins)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err == nil {
		err = os.Rename(tmp, p)
		if err != nil {
			c.log.Warn("registry client: cache", "err", err)
		}
	}
}

// readCache loads a cached answer.
func (c *Client) readCache(service string) ([]Instance, bool) {
	if c.cfg.CacheDir == "" {
		return nil, false
	}
	b, err := os.ReadFile(c.cachePath(service))
	if err != nil {
		return nil, false
	}
	var ins []Instance
	if err := json.Unmarshal(b, &ins); err != nil {
		c.log.Warn("registry client: ignoring a corrupt cache file", "service", service, "err", err)
		return nil, false
	}
	return ins, true
}
