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
	m  map[string]cachedAnswer
}

type cachedAnswer struct {
	index uint64
	body  []byte
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
	c.mu.Lock()
	a, ok := c.m[key]
	c.mu.Unlock()
	if ok && a.index == v.Index && v.Index != 0 {
		return a.body
	}
	res := Select(*v, found, q)
	body, _ := json.Marshal(&res)
	body = append(body, '\n')
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = make(map[string]cachedAnswer)
	}
	c.m[key] = cachedAnswer{v.Index, body}
	c.mu.Unlock()
	return body
}
