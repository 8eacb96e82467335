package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
)

// Op is the kind of a Command.
type Op string

// The operations of the replicated state machine.
const (
	OpRegister      Op = "register"       // upsert Instances into Key
	OpDeregister    Op = "deregister"     // remove IDs from Key
	OpSetHealth     Op = "health"         // set Healthy on IDs of Key
	OpPatch         Op = "patch"          // change weight/enabled/metadata of IDs
	OpPutService    Op = "put_service"    // create or replace Service
	OpDeleteService Op = "delete_service" // delete Key (must have no instances)
	OpBatch         Op = "batch"          // apply Batch in order; one log entry
)

// Patch changes some fields of instances; nil fields stay as they are.
type Patch struct {
	Weight   *float64          `json:"weight,omitempty"`
	Enabled  *bool             `json:"enabled,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Command is one change to the registry. Every node applies the same
// commands in the same order (through Raft), so every store holds the same
// data and the same index.
type Command struct {
	Op        Op         `json:"op"`
	Key       Key        `json:"key"`
	Instances []Instance `json:"instances,omitempty"`
	IDs       []string   `json:"ids,omitempty"`
	Healthy   bool       `json:"healthy,omitempty"`
	Patch     *Patch     `json:"patch,omitempty"`
	Service   *Service   `json:"service,omitempty"`
	Batch     []Command  `json:"batch,omitempty"`
	// Limits, stamped by the leader on registrations and service
	// creations, bound the counts the command may grow; nil (entries
	// written before limits existed) applies unbounded.
	Limits *Limits `json:"limits,omitempty"`
	// Config is the payload of the config operations.
	Config *ConfigCommand `json:"config,omitempty"`
}

// entry is the store's record of one service.
type entry struct {
	svc Service
	// explicit services were created through the API and stay when their
	// last instance leaves; implicit ones came with a registration and go
	// with the last instance.
	explicit bool
	inst     map[string]Instance
	// view is inst sorted, rebuilt on every change and never mutated, so
	// readers use it after dropping the lock.
	view  []Instance
	index uint64
	// fresh is set while applying a command when view was kept in step
	// with inst change by change (single registrations, the common case),
	// so the full rebuild can be skipped.
	fresh bool
}

func (e *entry) rebuild(index uint64) {
	v := make([]Instance, 0, len(e.inst))
	for _, in := range e.inst {
		v = append(v, in)
	}
	sortInstances(v)
	e.view = v
	e.index = index
}

// Store is the in-memory state every registry node holds. Writes come only
// through Apply; reads take a read lock and return immutable views.
type Store struct {
	mu       sync.RWMutex
	index    uint64
	services map[Key]*entry
	// waiters are closed when their service changes (blocking queries).
	waiters map[Key]chan struct{}
	// anyWaiter is closed on any change (list watches).
	anyWaiter chan struct{}
	// nsServices and nsInstances count each namespace's services and
	// instances, for the limits.
	nsServices  map[string]int
	nsInstances map[string]int
	// cfg is the config service's state, under its own lock.
	cfg *configState
}

// NewStore makes an empty store.
func NewStore() *Store {
	return &Store{
		services: map[Key]*entry{}, waiters: map[Key]chan struct{}{}, anyWaiter: make(chan struct{}),
		nsServices: map[string]int{}, nsInstances: map[string]int{},
		cfg: newConfigState(),
	}
}

// Index is the number of changes applied so far; it grows on every change.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// Apply applies one command. A command that fails validation changes
// nothing and returns the error; because commands are validated before
// they are proposed, this only happens to commands that raced (a
// deregistration of an instance already gone is not an error).
func (s *Store) Apply(c *Command) (uint64, error) {
	if isConfigOp(c.Op) {
		// Config changes have their own state and index (config_store.go).
		return s.cfg.apply(c.Op, c.Config)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := map[Key]bool{}
	err := s.apply(c, changed)
	if len(changed) > 0 {
		s.index++
		for k := range changed {
			if e := s.services[k]; e != nil {
				if e.fresh {
					e.index, e.fresh = s.index, false
				} else {
					e.rebuild(s.index)
				}
			}
			if w, ok := s.waiters[k]; ok {
				close(w)
				delete(s.waiters, k)
			}
		}
		close(s.anyWaiter)
		s.anyWaiter = make(chan struct{})
	}
	return s.index, err
}

// Validate checks a command without applying it, so that bad input is
// refused before it reaches the log.
func (c *Command) Validate() error {
	switch c.Op {
	case OpBatch:
		for i := range c.Batch {
			if err := c.Batch[i].Validate(); err != nil {
				return err
			}
		}
		return nil
	case OpPutService:
		if c.Service == nil {
			return fmt.Errorf("put_service without a service")
		}
		c.Service.Key = c.Service.Key.withDefaults()
		return c.Service.validate()
	case OpConfigPublish, OpConfigRemove, OpConfigRollback:
		if c.Config == nil {
			return fmt.Errorf("%s without a config", c.Op)
		}
		return c.Config.validate(c.Op)
	}
	c.Key = c.Key.withDefaults()
	if err := c.Key.Validate(); err != nil {
		return err
	}
	switch c.Op {
	case OpRegister:
		for i := range c.Instances {
			if err := c.Instances[i].normalize(); err != nil {
				return err
			}
		}
	case OpDeregister, OpSetHealth, OpDeleteService:
	case OpPatch:
		if c.Patch == nil {
			return fmt.Errorf("patch without changes")
		}
		if w := c.Patch.Weight; w != nil && (*w < 0 || *w > 10000) {
			return fmt.Errorf("weight %v is out of range 0-10000", *w)
		}
	default:
		return fmt.Errorf("unknown registry operation %q", c.Op)
	}
	return nil
}

func (s *Store) apply(c *Command, changed map[Key]bool) error {
	if c.Op != OpBatch && c.Op != OpPutService {
		c.Key = c.Key.withDefaults()
	}
	switch c.Op {
	case OpBatch:
		var first error
		for i := range c.Batch {
			if err := s.apply(&c.Batch[i], changed); err != nil && first == nil {
				first = err
			}
		}
		return first
	case OpRegister:
		e := s.services[c.Key]
		if err := s.checkRegister(c, e); err != nil {
			return err
		}
		if e == nil {
			e = &entry{svc: Service{Key: c.Key}, inst: map[string]Instance{}}
			s.services[c.Key] = e
			s.nsServices[c.Key.Namespace]++
		}
		// A registration of one instance into a view that is in step
		// copies the view with the instance in place: O(n) instead of the
		// O(n log n) rebuild, which matters for services of many instances.
		inStep := !changed[c.Key] || e.fresh
		for _, in := range c.Instances {
			if err := in.normalize(); err != nil {
				e.fresh = false
				changed[c.Key] = true
				return err
			}
			if _, ok := e.inst[in.ID()]; !ok {
				s.nsInstances[c.Key.Namespace]++
			}
			e.inst[in.ID()] = in
		}
		if inStep && len(c.Instances) == 1 {
			e.view, e.fresh = upsertSorted(e.view, c.Instances[0]), true
		} else {
			e.fresh = false
		}
		changed[c.Key] = true
	case OpDeregister:
		e := s.services[c.Key]
		if e == nil {
			return nil
		}
		for _, id := range c.IDs {
			if _, ok := e.inst[id]; ok {
				delete(e.inst, id)
				s.nsInstances[c.Key.Namespace]--
				changed[c.Key], e.fresh = true, false
			}
		}
		if len(e.inst) == 0 && !e.explicit {
			s.dropService(c.Key)
		}
	case OpSetHealth:
		e := s.services[c.Key]
		if e == nil {
			return nil
		}
		for _, id := range c.IDs {
			if in, ok := e.inst[id]; ok && in.Healthy != c.Healthy {
				in.Healthy = c.Healthy
				e.inst[id] = in
				changed[c.Key], e.fresh = true, false
			}
		}
	case OpPatch:
		e := s.services[c.Key]
		if e == nil || c.Patch == nil {
			return fmt.Errorf("service %s not found", c.Key)
		}
		for _, id := range c.IDs {
			in, ok := e.inst[id]
			if !ok {
				return fmt.Errorf("instance %s of %s not found", id, c.Key)
			}
			if c.Patch.Weight != nil {
				in.Weight = *c.Patch.Weight
			}
			if c.Patch.Enabled != nil {
				in.Enabled = *c.Patch.Enabled
			}
			if c.Patch.Metadata != nil {
				in.Metadata = c.Patch.Metadata
			}
			e.inst[id] = in
			changed[c.Key], e.fresh = true, false
		}
	case OpPutService:
		if c.Service == nil {
			return fmt.Errorf("put_service without a service")
		}
		svc := *c.Service
		svc.Key = svc.Key.withDefaults()
		if err := svc.validate(); err != nil {
			return err
		}
		e := s.services[svc.Key]
		if e == nil {
			if l := c.Limits; l != nil && s.nsServices[svc.Key.Namespace] >= l.ServicesPerNamespace {
				return limitErr("namespace %q already has %d services, the most registry.limits.services_per_namespace allows", svc.Key.Namespace, l.ServicesPerNamespace)
			}
			e = &entry{inst: map[string]Instance{}}
			s.services[svc.Key] = e
			s.nsServices[svc.Key.Namespace]++
		}
		e.svc, e.explicit = svc, true
		if !changed[svc.Key] {
			// Only the settings changed: the view is in step. (After an
			// earlier change in this command, fresh already says.)
			e.fresh = true
		}
		changed[svc.Key] = true
	case OpDeleteService:
		e := s.services[c.Key]
		if e == nil {
			return nil
		}
		if len(e.inst) > 0 {
			return fmt.Errorf("service %s still has %d instances", c.Key, len(e.inst))
		}
		s.dropService(c.Key)
		changed[c.Key] = true
	default:
		return fmt.Errorf("unknown registry operation %q", c.Op)
	}
	return nil
}

// checkRegister refuses a registration that would take its service or
// namespace past the limits the command carries. It runs before anything
// changes, so a refused command changes nothing.
func (s *Store) checkRegister(c *Command, e *entry) error {
	l := c.Limits
	if l == nil {
		return nil
	}
	ns := c.Key.Namespace
	if e == nil && s.nsServices[ns] >= l.ServicesPerNamespace {
		return limitErr("namespace %q already has %d services, the most registry.limits.services_per_namespace allows", ns, l.ServicesPerNamespace)
	}
	added := 0
	for i := range c.Instances {
		in := &c.Instances[i]
		if in.Cluster == "" {
			in.Cluster = DefaultCluster
		}
		if e == nil {
			added++
		} else if _, ok := e.inst[in.ID()]; !ok {
			added++
		}
	}
	if added == 0 {
		return nil
	}
	have := 0
	if e != nil {
		have = len(e.inst)
	}
	if have+added > l.InstancesPerService {
		return limitErr("service %s would have %d instances, more than registry.limits.instances_per_service (%d)", c.Key, have+added, l.InstancesPerService)
	}
	if s.nsInstances[ns]+added > l.InstancesPerNamespace {
		return limitErr("namespace %q would have %d instances, more than registry.limits.instances_per_namespace (%d)", ns, s.nsInstances[ns]+added, l.InstancesPerNamespace)
	}
	return nil
}

// dropService removes a service and its count.
func (s *Store) dropService(k Key) {
	delete(s.services, k)
	s.nsServices[k.Namespace]--
}

// upsertSorted returns a copy of view (sorted by cluster, ip, port) with
// in inserted, or replacing the instance with its ID.
func upsertSorted(view []Instance, in Instance) []Instance {
	less := func(a, b *Instance) bool {
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.IP != b.IP {
			return a.IP < b.IP
		}
		return a.Port < b.Port
	}
	i := sort.Search(len(view), func(i int) bool { return !less(&view[i], &in) })
	if i < len(view) && !less(&in, &view[i]) {
		out := append([]Instance(nil), view...)
		out[i] = in
		return out
	}
	out := make([]Instance, len(view)+1)
	copy(out, view[:i])
	out[i] = in
	copy(out[i+1:], view[i:])
	return out
}

// View is an immutable picture of one service.
type View struct {
	Service   Service
	Instances []Instance
	// Index is the store index of the service's last change.
	Index uint64
}

// Get returns the service's view; ok is false when it does not exist.
func (s *Store) Get(k Key) (v View, ok bool) {
	k = k.withDefaults()
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.services[k]
	if e == nil {
		return View{Service: Service{Key: k}}, false
	}
	return View{Service: e.svc, Instances: e.view, Index: e.index}, true
}

// Wait blocks until the service k changes after index, ctx ends or the
// service's index is already past index. It returns the current view.
func (s *Store) Wait(ctx context.Context, k Key, index uint64) (View, bool) {
	k = k.withDefaults()
	s.mu.Lock()
	e := s.services[k]
	// A service that does not exist has index 0: waiting past 0 waits for
	// it to appear, and a caller that knew it (index > 0) learns at once
	// that it is gone. An index ahead of an existing service's (a client
	// that talked to a node further along) waits for the next change, as
	// Consul's does.
	if (e == nil && index > 0) || (e != nil && e.index > index) {
		s.mu.Unlock()
		return s.Get(k)
	}
	w, ok := s.waiters[k]
	if !ok {
		w = make(chan struct{})
		s.waiters[k] = w
	}
	s.mu.Unlock()
	select {
	case <-w:
	case <-ctx.Done():
	}
	return s.Get(k)
}

// Changed returns a channel closed at the next change of any service.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.anyWaiter
}

// Services lists the services of a namespace (and group, when not empty),
// sorted by group and name.
func (s *Store) Services(namespace, group string) []Key {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	s.mu.RLock()
	var ks []Key
	for k := range s.services {
		if k.Namespace == namespace && (group == "" || k.Group == group) {
			ks = append(ks, k)
		}
	}
	s.mu.RUnlock()
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Group != ks[j].Group {
			return ks[i].Group < ks[j].Group
		}
		return ks[i].Service < ks[j].Service
	})
	return ks
}

// Instance returns one instance of k by ID.
func (s *Store) Instance(k Key, id string) (Instance, bool) {
	k = k.withDefaults()
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.services[k]
	if e == nil {
		return Instance{}, false
	}
	in, ok := e.inst[id]
	return in, ok
}

// each calls fn for every instance, under the read lock: fn must be quick.
func (s *Store) each(fn func(k Key, in *Instance)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, e := range s.services {
		for i := range e.view {
			fn(k, &e.view[i])
		}
	}
}

// Count returns the number of services and instances.
func (s *Store) Count() (services, instances int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.services {
		instances += len(e.inst)
	}
	return len(s.services), instances
}

// snapshotData is the serialised store.
type snapshotData struct {
	Index    uint64        `json:"index"`
	Services []snapshotSvc `json:"services"`
	// Config is the config service's state; snapshots written before it
	// existed lack it and restore to no configurations.
	Config *configSnapshot `json:"config,omitempty"`
}

type snapshotSvc struct {
	Service   Service    `json:"service"`
	Explicit  bool       `json:"explicit"`
	Index     uint64     `json:"index"`
	Instances []Instance `json:"instances"`
}

// capture takes a consistent picture of the store under its read lock
// without copying instances: views are immutable, and instance metadata
// maps are replaced, never changed in place, so the picture can be
// encoded later on another goroutine while the store moves on.
func (s *Store) capture() *snapshotData {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := &snapshotData{Index: s.index, Services: make([]snapshotSvc, 0, len(s.services))}
	for _, e := range s.services {
		d.Services = append(d.Services, snapshotSvc{Service: e.svc, Explicit: e.explicit, Index: e.index, Instances: e.view})
	}
	d.Config = s.cfg.capture()
	return d
}

// Save writes the whole store to w.
func (s *Store) Save(w io.Writer) error {
	return json.NewEncoder(w).Encode(s.capture())
}

// Load replaces the store's contents with a snapshot written by Save.
// Every waiter is woken, since anything may have changed.
func (s *Store) Load(r io.Reader) error {
	var d snapshotData
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return fmt.Errorf("reading registry snapshot: %w", err)
	}
	m := make(map[Key]*entry, len(d.Services))
	nsServices, nsInstances := map[string]int{}, map[string]int{}
	for _, ss := range d.Services {
		nsServices[ss.Service.Key.Namespace]++
		nsInstances[ss.Service.Key.Namespace] += len(ss.Instances)
		e := &entry{svc: ss.Service, explicit: ss.Explicit, inst: make(map[string]Instance, len(ss.Instances))}
		for _, in := range ss.Instances {
			e.inst[in.ID()] = in
		}
		e.rebuild(ss.Index)
		m[ss.Service.Key] = e
	}
	s.mu.Lock()
	s.services, s.index = m, d.Index
	s.nsServices, s.nsInstances = nsServices, nsInstances
	for k, w := range s.waiters {
		close(w)
		delete(s.waiters, k)
	}
	close(s.anyWaiter)
	s.anyWaiter = make(chan struct{})
	s.mu.Unlock()
	s.cfg.load(d.Config)
	return nil
}
