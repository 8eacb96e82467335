// Package configsource takes strata's own configuration from a config
// service: strata's registry, or any server of the Nacos v1 config API
// (GET /nacos/v1/cs/configs and the long-polling
// POST /nacos/v1/cs/configs/listener). `strata run --config-from
// registry://HOST:PORT/NAMESPACE/GROUP/DATAID` follows one configuration
// and reloads on each change, exactly as a file reload: all or nothing.
//
// It depends on nothing of strata but the standard library: the
// supervisor reads what it fetched through a supervisor.Source.
package configsource

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Registry follows one configuration of a config service.
type Registry struct {
	uri       string // as given, for messages
	base      string // http://host:port
	namespace string // "" for the public namespace, as Nacos's tenant
	group     string
	dataID    string
	token     string
	client    *http.Client
	log       *slog.Logger

	// PollTimeout is the long-poll's Long-Pulling-Timeout (default 30s,
	// Nacos's).
	PollTimeout time.Duration

	mu   sync.Mutex
	data []byte
	md5  string
}

// maxConfig bounds a fetched configuration (strata's registry stores at
// most 1 MiB per key).
const maxConfig = 4 << 20

// Parse reads registry://HOST:PORT/NAMESPACE/GROUP/DATAID. NAMESPACE
// "public" (or empty) is the default namespace; GROUP may be empty for
// DEFAULT_GROUP. token, when not empty, is sent as a bearer token (a
// namespace token of strata's registry, or its admin token).
func Parse(uri, token string, log *slog.Logger) (*Registry, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("config source %q: %w", uri, err)
	}
	if u.Scheme != "registry" {
		return nil, fmt.Errorf("config source %q: the scheme must be registry:// (registry://HOST:PORT/NAMESPACE/GROUP/DATAID)", uri)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("config source %q: no user, query or fragment is taken (a token comes from --config-token-file)", uri)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return nil, fmt.Errorf("config source %q: HOST:PORT is needed (the registry's HTTP port)", uri)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 3 || parts[2] == "" {
		return nil, fmt.Errorf("config source %q: the path must be /NAMESPACE/GROUP/DATAID", uri)
	}
	ns, group := parts[0], parts[1]
	if ns == "public" {
		ns = ""
	}
	if group == "" {
		group = "DEFAULT_GROUP"
	}
	if log == nil {
		log = slog.Default()
	}
	return &Registry{
		uri: uri, base: "http://" + u.Host, namespace: ns, group: group, dataID: parts[2], token: token,
		// No client timeout: a long-poll takes PollTimeout; each request
		// carries its own deadline.
		client:      &http.Client{},
		log:         log,
		PollTimeout: 30 * time.Second,
	}, nil
}

// Name is the source's name in errors: the URI, so that a bad version
// is reported as registry://…/DATAID:LINE: field: what is wrong.
func (r *Registry) Name() string { return r.uri }

// Current is the version fetched last.
func (r *Registry) Current() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.data
}

// Seed makes data the current version without fetching it: a node that
// starts while the registry is unreachable serves its cached copy, and
// the first long-poll, which sends data's md5, learns at once whether
// the registry holds another.
func (r *Registry) Seed(data []byte) {
	sum := md5.Sum(data)
	r.mu.Lock()
	r.data, r.md5 = data, hex.EncodeToString(sum[:])
	r.mu.Unlock()
}

// ErrNotFound is Fetch's error when the configuration does not exist.
var ErrNotFound = errors.New("configuration does not exist")

func (r *Registry) form() url.Values {
	v := url.Values{"dataId": {r.dataID}, "group": {r.group}}
	if r.namespace != "" {
		v.Set("tenant", r.namespace)
	}
	return v
}

func (r *Registry) do(req *http.Request) (*http.Response, error) {
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	return r.client.Do(req)
}

// Fetch reads the configuration and makes it current.
func (r *Registry) Fetch(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/nacos/v1/cs/configs?"+r.form().Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.uri, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading: %w", r.uri, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", r.uri, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s: %s", r.uri, resp.Status, strings.TrimSpace(string(body)))
	case len(body) > maxConfig:
		return nil, fmt.Errorf("%s: larger than %d bytes", r.uri, maxConfig)
	}
	sum := md5.Sum(body)
	got := hex.EncodeToString(sum[:])
	// The server's Content-MD5 is the md5 of what it stored; a body that
	// does not match was cut or altered on the way.
	if want := resp.Header.Get("Content-MD5"); want != "" && !strings.EqualFold(want, got) {
		return nil, fmt.Errorf("%s: the content's md5 %s is not the server's %s", r.uri, got, want)
	}
	r.mu.Lock()
	r.data, r.md5 = body, got
	r.mu.Unlock()
	return body, nil
}

// Wait long-polls until the configuration's md5 differs from the current
// version's (true) or the poll times out (false).
func (r *Registry) Wait(ctx context.Context) (bool, error) {
	r.mu.Lock()
	sum := r.md5
	r.mu.Unlock()
	line := r.dataID + "\x02" + r.group + "\x02" + sum
	if r.namespace != "" {
		line += "\x02" + r.namespace
	}
	body := url.Values{"Listening-Configs": {line + "\x01"}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, r.PollTimeout+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/nacos/v1/cs/configs/listener", strings.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Long-Pulling-Timeout", strconv.FormatInt(r.PollTimeout.Milliseconds(), 10))
	resp, err := r.do(req)
	if err != nil {
		return false, fmt.Errorf("%s: listening: %w", r.uri, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return false, fmt.Errorf("%s: listening: %w", r.uri, err)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s: listening: %s: %s", r.uri, resp.Status, strings.TrimSpace(string(b)))
	}
	// The answer names the changed keys; only this one is listened to.
	return strings.TrimSpace(string(b)) != "", nil
}

// Follow long-polls until ctx ends; after each change it fetches the new
// version and calls apply with it. Errors are logged and retried with a
// backoff (0.5 s doubling to 30 s), so a registry that restarts or loses
// its leader is followed again once it answers.
func (r *Registry) Follow(ctx context.Context, apply func([]byte)) {
	backoff := time.Duration(0)
	fail := func(err error) bool {
		if ctx.Err() != nil {
			return false
		}
		backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
		r.log.Warn("config source", "err", err, "retry_in", backoff.String())
		t := time.NewTimer(backoff)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		changed, err := r.Wait(ctx)
		if err != nil {
			if !fail(err) {
				return
			}
			continue
		}
		if !changed {
			backoff = 0
			continue
		}
		data, err := r.Fetch(ctx)
		if errors.Is(err, ErrNotFound) {
			// A removed configuration leaves the node as it is: stopping
			// every role because a key was deleted is never wanted.
			r.log.Error("config source: the configuration was removed; the running config keeps serving", "source", r.uri)
			r.mu.Lock()
			r.md5 = "" // a missing key's md5: wait for it to come back
			r.mu.Unlock()
			backoff = 0
			continue
		}
		if err != nil {
			if !fail(err) {
				return
			}
			continue
		}
		backoff = 0
		apply(data)
	}
}
