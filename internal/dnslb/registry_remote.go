package dnslb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/registry"
	"github.com/strata-lb/strata/pkg/client"
)

// Bounds of a remote source.
const (
	// remoteListEvery is how often the list of services is read again:
	// a new service is answered within about this long. Changes to the
	// instances of a known service arrive through blocking queries, at
	// once.
	remoteListEvery = time.Second
	// remoteMaxServices bounds the services followed, each with a
	// blocking query of its own.
	remoteMaxServices = 10000
)

// remoteSource is a ServiceSource over a registry in other processes: it
// lists the services of each namespace now and then, and follows each
// with the registry's Go SDK (blocking queries), so an instance's change
// reaches the answers within the blocking query's round trip.
type remoteSource struct {
	servers    []string
	token      string
	namespaces []string
	log        *slog.Logger
	http       *http.Client

	mu      sync.Mutex
	listed  map[string][]registry.Key // by namespace, the services followed
	results map[registry.Key]*registry.Result
	clients map[[2]string]*client.Client // by namespace and group
	changed chan struct{}
	index   uint64

	started bool
	stop    chan struct{}
	done    chan struct{}
}

func newRemoteSource(rc *config.DNSRegistry, log *slog.Logger) (*remoteSource, error) {
	if len(rc.Servers) == 0 {
		return nil, fmt.Errorf("no servers")
	}
	return &remoteSource{
		servers: slices.Clone(rc.Servers), token: rc.Token, namespaces: slices.Clone(rc.Namespaces), log: log,
		http:   &http.Client{Timeout: 5 * time.Second},
		listed: map[string][]registry.Key{}, results: map[registry.Key]*registry.Result{},
		clients: map[[2]string]*client.Client{}, changed: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// same reports whether rc asks for this source.
func (r *remoteSource) same(rc *config.DNSRegistry) bool {
	return slices.Equal(r.servers, rc.Servers) && r.token == rc.Token && slices.Equal(r.namespaces, rc.Namespaces)
}

func (r *remoteSource) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return
	}
	r.started = true
	go r.run()
}

// close stops listing and every blocking query.
func (r *remoteSource) close() {
	r.mu.Lock()
	started := r.started
	r.started = false
	clients := r.clients
	r.clients = map[[2]string]*client.Client{}
	r.mu.Unlock()
	if started {
		close(r.stop)
		<-r.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range clients {
		_ = c.Close(ctx)
	}
}

func (r *remoteSource) run() {
	defer close(r.done)
	t := time.NewTicker(remoteListEvery)
	defer t.Stop()
	for {
		for _, ns := range r.namespaces {
			ks, err := r.list(ns)
			if err != nil {
				// Keep answering from what was last known.
				r.log.Warn("dns: listing registry services", "namespace", ns, "err", err)
				continue
			}
			r.follow(ns, ks)
		}
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

// list reads the services of a namespace from the first server that
// answers.
func (r *remoteSource) list(ns string) ([]registry.Key, error) {
	var last error
	for _, s := range r.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		go func() {
			select {
			case <-r.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		ks, err := r.listFrom(ctx, s, ns)
		cancel()
		if err == nil {
			return ks, nil
		}
		last = err
	}
	return nil, last
}

func (r *remoteSource) listFrom(ctx context.Context, server, ns string) ([]registry.Key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+server+"/v1/registry/services?namespace="+url.QueryEscape(ns), nil)
	if err != nil {
		return nil, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", server, resp.Status)
	}
	var out struct {
		Services []registry.Key `json:"services"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("%s: decoding the service list: %w", server, err)
	}
	return out.Services, nil
}

// follow makes ks the services of ns and subscribes to the new ones. A
// service that left the list is no longer answered; the SDK has no way
// to end one subscription, so its blocking query runs on until the
// source closes.
func (r *remoteSource) follow(ns string, ks []registry.Key) {
	r.mu.Lock()
	if !r.started {
		r.mu.Unlock()
		return
	}
	var keep, fresh []registry.Key
	for _, k := range ks {
		if k.Namespace != ns {
			continue
		}
		if _, ok := r.results[k]; !ok {
			if len(r.results) >= remoteMaxServices {
				continue
			}
			// Listed, but Resolve says not found until the first answer.
			r.results[k] = nil
			fresh = append(fresh, k)
		}
		keep = append(keep, k)
	}
	if !slices.Equal(keep, r.listed[ns]) {
		r.listed[ns] = keep
		r.signal()
	}
	r.mu.Unlock()
	// Subscribe may call back at once, and the callback takes r.mu.
	for _, k := range fresh {
		if err := r.subscribe(k); err != nil {
			r.log.Warn("dns: following registry service", "service", k.String(), "err", err)
		}
	}
}

// subscribe starts following k.
func (r *remoteSource) subscribe(k registry.Key) error {
	ck := [2]string{k.Namespace, k.Group}
	r.mu.Lock()
	if !r.started {
		r.mu.Unlock()
		return fmt.Errorf("source closed")
	}
	c := r.clients[ck]
	if c == nil {
		var err error
		c, err = client.New(client.Config{Servers: r.servers, Namespace: k.Namespace, Group: k.Group, Token: r.token, Logger: r.log})
		if err != nil {
			r.mu.Unlock()
			return err
		}
		r.clients[ck] = c
	}
	r.mu.Unlock()
	return c.Subscribe(k.Service, func(ins []client.Instance) {
		res := &registry.Result{Found: true, Instances: make([]registry.Instance, 0, len(ins))}
		for _, in := range ins {
			res.Instances = append(res.Instances, registry.Instance{IP: in.IP, Port: in.Port, Cluster: in.Cluster,
				Weight: in.Weight, Healthy: in.Healthy, Enabled: in.Enabled, Ephemeral: in.Ephemeral})
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.index++
		res.Index = r.index
		r.results[k] = res
		r.signal()
	})
}

// signal closes the change channel. Callers hold r.mu.
func (r *remoteSource) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Resolve implements ServiceSource.
func (r *remoteSource) Resolve(namespace, group, service string) (registry.Result, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.results[registry.Key{Namespace: namespace, Group: group, Service: service}]
	if res == nil {
		return registry.Result{}, false
	}
	return *res, true
}

// Changed implements ServiceSource.
func (r *remoteSource) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Services implements ServiceSource.
func (r *remoteSource) Services(namespace string) []registry.Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.listed[namespace])
}
