package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-lb/strata/internal/balance"
)

// Config configures a Client.
type Config struct {
	// Servers are the HTTP addresses (host:port) of registry nodes; any
	// node serves, followers forward writes to the leader.
	Servers []string
	// Namespace and Group default to "public" and "DEFAULT_GROUP".
	Namespace, Group string
	// Token is sent as a bearer token with every request: the
	// namespace's access token, or the admin token. Reads need it in a
	// namespace that has a token; every registration, heartbeat and
	// deregistration needs it once the registry has an admin token
	// (docs/registry.md#security).
	Token string
	// CacheDir keeps the last answer of every subscribed service on disk;
	// empty turns the cache off.
	CacheDir string
	// Algorithm is the load-balancing algorithm of Pick: any name from
	// strata's balance package (rr, wrr, random, p2c, maglev …; default wrr).
	Algorithm string
	// Zone is the caller's zone, for zone affinity; Caller and Tags
	// identify it for gray routes.
	Zone   string
	Caller string
	Tags   map[string]string
	// MaxFails consecutive failures reported with Done eject an instance
	// for BaseEjection (doubling on repeats); defaults 5 and 30s.
	MaxFails     int
	BaseEjection time.Duration
	// Wait is how long one blocking query waits for a change (default 30s).
	Wait time.Duration
	// HTTPClient makes the requests (default: a client with a timeout
	// longer than Wait).
	HTTPClient *http.Client
	// Logger receives the client's logs (default slog.Default()).
	Logger *slog.Logger
}

// Instance is one instance of a service.
type Instance struct {
	IP        string            `json:"ip"`
	Port      int               `json:"port"`
	Cluster   string            `json:"cluster,omitempty"`
	Weight    float64           `json:"weight"`
	Healthy   bool              `json:"healthy"`
	Enabled   bool              `json:"enabled"`
	Ephemeral bool              `json:"ephemeral"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Addr is ip:port.
func (i Instance) Addr() string { return net.JoinHostPort(i.IP, strconv.Itoa(i.Port)) }

// ErrNoInstance is returned by Pick when a service has no instance that
// may take traffic.
var ErrNoInstance = errors.New("registry client: no instance available")

// Client talks to a strata registry.
type Client struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger
	next atomic.Uint32 // the server to try first

	mu     sync.Mutex
	regs   map[string]*registration
	subs   map[string]*subscription
	closed bool
	wg     sync.WaitGroup
}

// New makes a client. It does not contact the servers yet.
func New(cfg Config) (*Client, error) {
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("registry client: no servers")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "public"
	}
	if cfg.Group == "" {
		cfg.Group = "DEFAULT_GROUP"
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = "wrr"
	}
	if _, err := balance.Builder(cfg.Algorithm, balance.Options{}); err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	if cfg.MaxFails == 0 {
		cfg.MaxFails = 5
	}
	if cfg.Wait == 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Wait + 10*time.Second}
	}
	return &Client{cfg: cfg, http: hc, log: cfg.Logger, regs: map[string]*registration{}, subs: map[string]*subscription{}}, nil
}

// do sends a request to the servers in turn, starting with the last one
// that answered, until one answers without a server error.
func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	var last error
	start := int(c.next.Load())
	for i := range c.cfg.Servers {
		si := (start + i) % len(c.cfg.Servers)
		req, err := http.NewRequestWithContext(ctx, method, "http://"+c.cfg.Servers[si]+path, bytes.NewReader(b))
		if err != nil {
			return err
		}
		if c.cfg.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			last = err
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err == nil && resp.StatusCode >= 500 {
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
		}
		if err != nil {
			last = err
			continue
		}
		c.next.Store(uint32(si))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("registry client: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("registry client: decoding answer of %s: %w", path, err)
			}
		}
		return nil
	}
	return fmt.Errorf("registry client: every server failed: %w", last)
}

// errClosed is what a closed client answers Register and Subscribe with.
var errClosed = errors.New("registry client: closed")

// registration keeps one instance registered.
type registration struct {
	body   map[string]any
	cancel context.CancelFunc
	done   chan struct{}
}

func (c *Client) instanceBody(service string, in Instance) map[string]any {
	return map[string]any{
		"namespace": c.cfg.Namespace, "group": c.cfg.Group, "service": service,
		"ip": in.IP, "port": in.Port, "cluster": in.Cluster, "weight": in.Weight,
		"healthy": true, "enabled": true, "ephemeral": true, "metadata": in.Metadata,
	}
}

// Register registers an ephemeral instance of service and keeps it alive
// with heartbeats until Deregister or Close. A zero weight means 1.
func (c *Client) Register(ctx context.Context, service string, in Instance) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errClosed
	}
	if in.Weight == 0 {
		in.Weight = 1
	}
	body := c.instanceBody(service, in)
	var ans struct {
		Interval int64 `json:"heartbeat_interval_ms"`
	}
	if err := c.do(ctx, http.MethodPut, "/v1/registry/instances", body, &ans); err != nil {
		return err
	}
	interval := time.Duration(ans.Interval) * time.Millisecond
	if interval <= 0 {
		interval = 5 * time.Second
	}
	hctx, cancel := context.WithCancel(context.Background())
	r := &registration{body: body, cancel: cancel, done: make(chan struct{})}
	key := service + "|" + in.Addr() + "|" + in.Cluster
	c.mu.Lock()
	if c.closed {
		// Close has run (perhaps while the PUT was in flight): nothing
		// would ever stop these heartbeats. The instance expires.
		c.mu.Unlock()
		cancel()
		return errClosed
	}
	if old := c.regs[key]; old != nil {
		old.cancel()
	}
	c.regs[key] = r
	c.mu.Unlock()
	go func() {
		defer close(r.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
			if err := c.do(hctx, http.MethodPut, "/v1/registry/beat", body, nil); err != nil && hctx.Err() == nil {
				c.log.Warn("registry client: heartbeat", "service", service, "err", err)
			}
		}
	}()
	return nil
}

// Deregister stops the heartbeats of an instance and removes it.
func (c *Client) Deregister(ctx context.Context, service string, in Instance) error {
	key := service + "|" + in.Addr() + "|" + in.Cluster
	c.mu.Lock()
	r := c.regs[key]
	delete(c.regs, key)
	c.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
	q := url.Values{"namespace": {c.cfg.Namespace}, "group": {c.cfg.Group}, "service": {service}, "ip": {in.IP}, "port": {strconv.Itoa(in.Port)}, "cluster": {in.Cluster}}
	return c.do(ctx, http.MethodDelete, "/v1/registry/instances?"+q.Encode(), nil, nil)
}

// Close deregisters every instance this client registered and stops
// every subscription.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	regs := c.regs
	c.regs = map[string]*registration{}
	subs := c.subs
	c.mu.Unlock()
	var first error
	for _, r := range regs {
		r.cancel()
		<-r.done
		b := r.body
		q := url.Values{"namespace": {c.cfg.Namespace}, "group": {c.cfg.Group}, "service": {b["service"].(string)},
			"ip": {b["ip"].(string)}, "port": {strconv.Itoa(b["port"].(int))}, "cluster": {b["cluster"].(string)}}
		if err := c.do(ctx, http.MethodDelete, "/v1/registry/instances?"+q.Encode(), nil, nil); err != nil && first == nil {
			first = err
		}
	}
	for _, s := range subs {
		s.cancel()
	}
	c.wg.Wait()
	return first
}

// weightOf turns a registry weight (a float, Nacos style) into a pool
// weight, keeping two decimals.
func weightOf(w float64) int {
	if w <= 0 {
		return 0
	}
	return max(1, int(math.Round(w*100)))
}
