package registry

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// answerCache keeps the encoded answer of recent queries per service
// version. Many callers ask the same question (every subscriber of a
// service wakes on the same change): the answer is selected and encoded
// once per change instead of once per caller.
type answerCache struct {
	mu sync.Mutex
	m  map[string]*cachedAnswer
}

// cachedAnswer is one encoded answer. The first caller to ask after a
// change encodes it; callers arriving meanwhile wait on done instead of
// encoding it again (a thousand subscribers wake on the same change).
type cachedAnswer struct {
	index uint64
	body  []byte
	done  chan struct{}
}

// maxCached bounds the cache; when full it starts over, which costs one
// re-encoding per question.
const maxCached = 8192

// cacheKey names a question: the path and the parameters that shape the
// answer (not index and wait). When the service has percentage routes the
// answer depends on the caller, so the caller is part of the key.
func cacheKey(r *http.Request, v *View, caller string) string {
	percent := false
	for _, rt := range v.Service.Routes {
		percent = percent || rt.Percent > 0
	}
	raw := r.URL.RawQuery
	if !percent && !strings.Contains(raw, "index=") && !strings.Contains(raw, "wait=") && !strings.Contains(raw, "accessToken=") {
		// The common case: the raw query is the question as it is.
		return r.URL.Path + "?" + raw
	}
	q := r.URL.Query()
	q.Del("index")
	q.Del("wait")
	q.Del("accessToken")
	if percent {
		q.Set("caller", caller)
	}
	return r.URL.Path + "?" + q.Encode()
}

// answer returns the encoded Select of q over v, from the cache when the
// service has not changed since it was encoded.
func (c *answerCache) answer(key string, v *View, found bool, q *Query) []byte {
	if v.Index == 0 {
		// A missing service: nothing to share, and index 0 is not a version.
		return encode(v, found, q)
	}
	c.mu.Lock()
	if a, ok := c.m[key]; ok && a.index == v.Index {
		c.mu.Unlock()
		<-a.done
		return a.body
	} else if ok && a.index > v.Index {
		// This caller read an older version than the cached one (it
		// raced a change): answer what it read, leave the newer entry.
		c.mu.Unlock()
		return encode(v, found, q)
	}
	a := &cachedAnswer{index: v.Index, done: make(chan struct{})}
	if c.m == nil || len(c.m) >= maxCached {
		c.m = make(map[string]*cachedAnswer)
	}
	c.m[key] = a
	c.mu.Unlock()
	a.body = encode(v, found, q)
	close(a.done)
	return a.body
}

func encode(v *View, found bool, q *Query) []byte {
	res := Select(*v, found, q)
	body, _ := json.Marshal(&res)
	return append(body, '\n')
}
