package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// ServiceAnswer is what a namespace watch says of one service: its
// instances that may take traffic, with the protection threshold applied
// (Protected says when it stepped in), or Found false once it is deleted.
type ServiceAnswer struct {
	Group, Service string
	// Index is the service's change index: equal indexes, equal answers.
	Index     uint64
	Instances []Instance
	Protected bool
	Found     bool
}

// maxWatchLine bounds one line of a namespace watch: one service's answer.
const maxWatchLine = 64 << 20

// WatchNamespace follows every service of the client's namespace through
// one stream (GET /v1/registry/watch/{namespace}), where Subscribe takes a
// blocking query per service. fn gets all=true and every service of the
// namespace whenever a stream starts — the whole namespace, replacing what
// it had — then all=false and the services that changed, as they change.
// Calls come one at a time. While every server fails it retries, backing
// off up to 5s; it returns when ctx ends.
func (c *Client) WatchNamespace(ctx context.Context, fn func(all bool, answers []ServiceAnswer)) {
	// The stream lasts as long as the watch: no timeout on the whole
	// exchange, which the request client has for blocking queries.
	hc := &http.Client{Transport: c.http.Transport}
	backoff := 100 * time.Millisecond
	failures := 0
	for ctx.Err() == nil {
		synced, err := c.watchOnce(ctx, hc, fn)
		if ctx.Err() != nil {
			return
		}
		if synced {
			backoff, failures = 100*time.Millisecond, 0
		}
		failures++
		level := slog.LevelWarn
		if failures == 1 {
			// A stream ends when its server stops or restarts; the next
			// server takes over at once.
			level = slog.LevelDebug
		}
		c.log.Log(ctx, level, "registry client: watching namespace", "namespace", c.cfg.Namespace, "err", err, "attempt", failures)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// watchOnce reads one stream from the server to try first, and moves on
// to the next server when the stream fails. synced reports whether the
// stream got as far as the whole namespace.
func (c *Client) watchOnce(ctx context.Context, hc *http.Client, fn func(bool, []ServiceAnswer)) (synced bool, err error) {
	si := int(c.next.Load()) % len(c.cfg.Servers)
	defer func() {
		if err != nil && ctx.Err() == nil {
			c.next.CompareAndSwap(uint32(si), uint32((si+1)%len(c.cfg.Servers)))
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.cfg.Servers[si]+"/v1/registry/watch/"+url.PathEscape(c.cfg.Namespace), nil)
	if err != nil {
		return false, err
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return false, fmt.Errorf("%s: %s: %s", c.cfg.Servers[si], resp.Status, bytes.TrimSpace(data))
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var batch []ServiceAnswer
	for {
		line, err := readWatchLine(br)
		if err != nil {
			return synced, err
		}
		var l struct {
			Key *struct {
				Group   string `json:"group"`
				Service string `json:"service"`
			} `json:"key"`
			Result *struct {
				Index     uint64     `json:"index"`
				Instances []Instance `json:"instances"`
				Protected bool       `json:"protected"`
				Found     bool       `json:"found"`
			} `json:"result"`
			Synced bool `json:"synced"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			return synced, fmt.Errorf("%s: decoding a watch line: %w", c.cfg.Servers[si], err)
		}
		switch {
		case l.Synced:
			if !synced {
				synced = true
				fn(true, batch)
				batch = nil
			}
			continue
		case l.Key == nil || l.Result == nil:
			continue // a kind of line this client does not know
		}
		batch = append(batch, ServiceAnswer{Group: l.Key.Group, Service: l.Key.Service, Index: l.Result.Index,
			Instances: l.Result.Instances, Protected: l.Result.Protected, Found: l.Result.Found})
		// After the first listing, hand on what one write of the server
		// held together, so a burst of changes is one call.
		if synced && br.Buffered() == 0 {
			fn(false, batch)
			batch = nil
		}
	}
}

// readWatchLine reads one line of at most maxWatchLine bytes.
func readWatchLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxWatchLine {
			return nil, errors.New("a watch line is longer than 64 MiB")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = errors.New("the watch stream ended")
			}
			return nil, err
		}
		return line, nil
	}
}
