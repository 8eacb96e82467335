package l7

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// sticky pins clients to backends with an inserted cookie. Its value is
// the HMAC-SHA256 of the pool and backend names under the route's key, so
// it names a backend without revealing its address and cannot be forged
// to reach one. Checking a cookie is a map lookup: the value of every
// backend is computed once per pool version, not per request.
type sticky struct {
	name   string
	attrs  string // "; Path=/; HttpOnly" and the rest
	key    []byte
	pools  []*upstream.Pool
	values atomic.Pointer[stickyTable]
}

// stickyTable maps the cookie values of one set of pool versions.
type stickyTable struct {
	versions []uint64
	byValue  map[string]stickyRef
	// setCookie holds the Set-Cookie line per pool index and backend name.
	setCookie []map[string][]string
}

type stickyRef struct {
	pool int
	name string
}

const defaultStickyCookie = "strata_sticky"

func newSticky(c *config.RouteSticky, listener, route string, pools []*upstream.Pool, log *slog.Logger) (*sticky, error) {
	s := &sticky{name: c.Cookie, pools: pools}
	if s.name == "" {
		s.name = defaultStickyCookie
	}
	if err := config.CheckHashKey("cookie:"+s.name, true); err != nil {
		return nil, err
	}
	secret := c.Secret
	if c.SecretFile != "" {
		// Read on every build of the route, so a reload picks up a
		// rotated secret.
		var err error
		if secret, err = config.ReadSecretFile(c.SecretFile); err != nil {
			return nil, fmt.Errorf("sticky.secret_file: %w", err)
		}
		if err := config.CheckStickySecret(secret); err != nil {
			return nil, fmt.Errorf("sticky.secret_file %s: the secret %w", c.SecretFile, err)
		}
	}
	if secret != "" {
		s.key = []byte(secret)
	} else {
		// A random key per process would break stickiness across the
		// nodes of a cluster and across restarts. A key derived from the
		// config is the same on every node that loads it; it is not
		// secret, so a client could forge a cookie to choose a backend,
		// which is why a configured secret is recommended.
		h := sha256.New()
		h.Write([]byte("strata sticky v1\x00" + listener + "\x00" + route + "\x00" + s.name))
		for _, p := range pools {
			h.Write([]byte("\x00" + p.Name()))
		}
		s.key = h.Sum(nil)
		log.Warn("sticky cookie key derived from the config; set sticky.secret so that clients cannot choose their backend",
			"listener", listener, "route", route)
	}
	path := c.Path
	if path == "" {
		path = "/"
	}
	s.attrs = "; Path=" + path + "; HttpOnly; SameSite=Lax"
	if c.MaxAge > 0 {
		s.attrs += "; Max-Age=" + strconv.FormatInt(int64(time.Duration(c.MaxAge)/time.Second), 10)
	}
	if c.Secure {
		s.attrs += "; Secure"
	}
	return s, nil
}

// value computes the cookie value for a backend of a pool.
func (s *sticky) value(pool, backend string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(pool))
	m.Write([]byte{0})
	m.Write([]byte(backend))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// table returns the value table for the pools' current versions,
// rebuilding it when any pool has changed.
func (s *sticky) table(snaps []*upstream.Snapshot) *stickyTable {
	if t := s.values.Load(); t != nil {
		same := true
		for i, sn := range snaps {
			if t.versions[i] != sn.Version {
				same = false
				break
			}
		}
		if same {
			return t
		}
	}
	t := &stickyTable{versions: make([]uint64, len(snaps)), byValue: map[string]stickyRef{},
		setCookie: make([]map[string][]string, len(snaps))}
	for i, sn := range snaps {
		t.versions[i] = sn.Version
		t.setCookie[i] = make(map[string][]string, len(sn.All))
		for _, b := range sn.All {
			v := s.value(s.pools[i].Name(), b.Name)
			t.byValue[v] = stickyRef{pool: i, name: b.Name}
			t.setCookie[i][b.Name] = []string{s.name + "=" + v + s.attrs}
		}
	}
	// Concurrent rebuilds produce equal tables; the last one stored wins.
	s.values.Store(t)
	return t
}

// resolve returns the backend the request's cookie names, with its pool
// index, when that backend may take traffic now. want, when >= 0, is the
// pool a split condition forced: a cookie for another pool is ignored.
func (s *sticky) resolve(r *http.Request, snaps []*upstream.Snapshot, want int) (*upstream.Backend, int) {
	v, ok := cookieValue(r.Header["Cookie"], s.name)
	if !ok {
		return nil, -1
	}
	ref, ok := s.table(snaps).byValue[v]
	if !ok || (want >= 0 && ref.pool != want) {
		return nil, -1
	}
	b := snaps[ref.pool].Lookup(ref.name)
	if b == nil || !b.Available() {
		// Down, draining, ejected, unhealthy, weight 0 or removed: the
		// client moves to a new pick and gets a new cookie.
		return nil, -1
	}
	return b, ref.pool
}

// setCookie returns the Set-Cookie value naming b in pool index i.
func (s *sticky) setCookie(snaps []*upstream.Snapshot, i int, b *upstream.Backend) []string {
	if m := s.table(snaps).setCookie[i]; m != nil {
		if v := m[b.Name]; v != nil {
			return v
		}
	}
	return []string{s.name + "=" + s.value(s.pools[i].Name(), b.Name) + s.attrs}
}
