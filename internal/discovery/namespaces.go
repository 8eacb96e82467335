package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/strata-lb/strata/internal/regapi"
	"github.com/strata-lb/strata/pkg/client"
)

// MaxNamespaceServices bounds the services a Namespaces source keeps;
// more are left out, with a warning.
const MaxNamespaceServices = 10000

// Namespaces follows every service of some namespaces of a registry in
// other processes and answers as a regapi.Source: what the dns role's
// dns.registry reads when it lists servers. Each namespace is one watch
// stream (the SDK's WatchNamespace), however many services it holds, so
// an instance's change reaches the answers within one round trip.
type Namespaces struct {
	servers    []string
	token      string
	namespaces []string
	clients    []*client.Client // one per namespace
	log        *slog.Logger

	mu      sync.Mutex
	listed  map[string][]regapi.Key // by namespace, sorted
	results map[regapi.Key]*regapi.Result
	changed chan struct{}

	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var _ regapi.Source = (*Namespaces)(nil)

// NewNamespaces makes a source for the namespaces of the registry at
// servers. It follows nothing until Start.
func NewNamespaces(servers []string, token string, namespaces []string, log *slog.Logger) (*Namespaces, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("no servers")
	}
	if log == nil {
		log = slog.Default()
	}
	n := &Namespaces{
		servers: slices.Clone(servers), token: token, namespaces: slices.Clone(namespaces), log: log,
		listed: map[string][]regapi.Key{}, results: map[regapi.Key]*regapi.Result{}, changed: make(chan struct{}),
	}
	for _, ns := range n.namespaces {
		c, err := client.New(client.Config{Servers: n.servers, Namespace: ns, Token: n.token, Logger: log})
		if err != nil {
			return nil, err
		}
		n.clients = append(n.clients, c)
	}
	return n, nil
}

// Same reports whether the source follows exactly these.
func (n *Namespaces) Same(servers []string, token string, namespaces []string) bool {
	return slices.Equal(n.servers, servers) && n.token == token && slices.Equal(n.namespaces, namespaces)
}

// Start starts one watch per namespace; a second call does nothing.
func (n *Namespaces) Start() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	for i, c := range n.clients {
		ns := n.namespaces[i]
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			c.WatchNamespace(ctx, func(all bool, as []client.ServiceAnswer) { n.apply(ns, all, as) })
		}()
	}
	n.started, n.cancel = true, cancel
}

// Close stops every watch and waits for them.
func (n *Namespaces) Close() {
	n.mu.Lock()
	cancel := n.cancel
	n.started, n.cancel = false, nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		n.wg.Wait()
	}
}

// apply takes what a watch of ns said: the whole namespace (all) or the
// services that changed.
func (n *Namespaces) apply(ns string, all bool, as []client.ServiceAnswer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	listed := map[regapi.Key]bool{}
	if !all {
		for _, k := range n.listed[ns] {
			listed[k] = true
		}
	} else {
		for _, k := range n.listed[ns] {
			delete(n.results, k)
		}
	}
	dropped := 0
	for i := range as {
		a := &as[i]
		k := regapi.Key{Namespace: ns, Group: a.Group, Service: a.Service}
		if !a.Found {
			delete(listed, k)
			delete(n.results, k)
			continue
		}
		if !listed[k] && len(n.results) >= MaxNamespaceServices {
			dropped++
			continue
		}
		listed[k] = true
		n.results[k] = resultOf(a)
	}
	if dropped > 0 {
		n.log.Warn("dns: registry services left out", "namespace", ns, "services", dropped, "max", MaxNamespaceServices)
	}
	keys := make([]regapi.Key, 0, len(listed))
	for k := range listed {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b regapi.Key) int {
		if a.Group != b.Group {
			return strings.Compare(a.Group, b.Group)
		}
		return strings.Compare(a.Service, b.Service)
	})
	n.listed[ns] = keys
	close(n.changed)
	n.changed = make(chan struct{})
}

func resultOf(a *client.ServiceAnswer) *regapi.Result {
	res := &regapi.Result{Index: a.Index, Protected: a.Protected, Found: true, Instances: make([]regapi.Instance, len(a.Instances))}
	for i, in := range a.Instances {
		res.Instances[i] = regapi.Instance{IP: in.IP, Port: in.Port, Cluster: in.Cluster, Weight: in.Weight,
			Healthy: in.Healthy, Enabled: in.Enabled, Ephemeral: in.Ephemeral, Metadata: in.Metadata}
	}
	return res
}

// Resolve implements regapi.Resolver.
func (n *Namespaces) Resolve(namespace, group, service string) (regapi.Result, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	res := n.results[regapi.Key{Namespace: namespace, Group: group, Service: service}]
	if res == nil {
		return regapi.Result{}, false
	}
	return *res, true
}

// Changed implements regapi.Resolver.
func (n *Namespaces) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

// Services implements regapi.Source.
func (n *Namespaces) Services(namespace string) []regapi.Key {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.listed[namespace])
}
