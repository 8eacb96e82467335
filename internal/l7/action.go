package l7

import (
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"

	"github.com/strata-lb/strata/internal/config"
)

// headerOps edits a header block: remove, then set, then add. Names are
// canonical, so a request or response header map is edited by key.
type headerOps struct {
	remove []string
	set    []headerField
	add    []headerField
}

type headerField struct {
	name  string
	value []string // shared, never modified: Set stores it as is
}

func (o *headerOps) empty() bool { return len(o.remove)+len(o.set)+len(o.add) == 0 }

func compileHeaderOps(c *config.HeaderOps) (headerOps, error) {
	var o headerOps
	for _, n := range c.Remove {
		if !isToken(n) {
			return o, fmt.Errorf("%q is not a header name", n)
		}
		o.remove = append(o.remove, textproto.CanonicalMIMEHeaderKey(n))
	}
	var err error
	if o.set, err = headerFields(c.Set); err != nil {
		return o, err
	}
	if o.add, err = headerFields(c.Add); err != nil {
		return o, err
	}
	return o, nil
}

func headerFields(m map[string]string) ([]headerField, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]headerField, 0, len(m))
	for _, k := range names {
		if !isToken(k) {
			return nil, fmt.Errorf("%q is not a header name", k)
		}
		if strings.ContainsAny(m[k], "\r\n\x00") {
			return nil, fmt.Errorf("value of %s holds a line break or NUL", k)
		}
		out = append(out, headerField{name: textproto.CanonicalMIMEHeaderKey(k), value: []string{m[k]}})
	}
	return out, nil
}

// apply edits h. Set shares its value slice; http.Header's Add copies on
// append only when it must, and never into a shared slice, because the
// shared slices have no spare capacity.
func (o *headerOps) apply(h http.Header) {
	for _, n := range o.remove {
		delete(h, n)
	}
	for _, f := range o.set {
		h[f.name] = f.value[:1:1]
	}
	for _, f := range o.add {
		h[f.name] = append(h[f.name], f.value[0])
	}
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// statusSet is a set of HTTP statuses as a bitmap, so that checking a
// response costs no lookup.
type statusSet struct{ bits [10]uint64 } // 100..739

func newStatusSet(codes []int, lowest int) (statusSet, error) {
	var s statusSet
	for _, c := range codes {
		if c < lowest || c > 599 {
			return s, fmt.Errorf("status %d out of range", c)
		}
		i := c - 100
		s.bits[i/64] |= 1 << (i % 64)
	}
	return s, nil
}

func (s *statusSet) has(code int) bool {
	i := code - 100
	return i >= 0 && i < 640 && s.bits[i/64]&(1<<(i%64)) != 0
}

func (s *statusSet) empty() bool { return s.bits == [10]uint64{} }

// redirect is a compiled config.RouteRedirect.
type redirect struct {
	status        int
	scheme, host  string
	path          string
	prefix        string // the route's path prefix, replaced by prefixRewrite
	prefixRewrite string
	hasRewrite    bool
	dropQuery     bool
}

func compileRedirect(c *config.RouteRedirect, prefix string) (*redirect, error) {
	rd := &redirect{status: c.Status, scheme: c.Scheme, host: c.Host, path: c.Path,
		prefix: prefix, prefixRewrite: c.PrefixRewrite, hasRewrite: c.PrefixRewrite != "", dropQuery: c.DropQuery}
	switch rd.status {
	case 0:
		rd.status = http.StatusFound
	case 301, 302, 303, 307, 308:
	default:
		return nil, fmt.Errorf("status %d is not a redirect", c.Status)
	}
	switch rd.scheme {
	case "", "http", "https":
	default:
		return nil, fmt.Errorf("scheme %q is not http or https", c.Scheme)
	}
	if strings.ContainsAny(rd.host, "/ \r\n") {
		return nil, fmt.Errorf("%q is not a host", c.Host)
	}
	if rd.path != "" && rd.hasRewrite {
		return nil, fmt.Errorf("path and prefix_rewrite cannot both be set")
	}
	return rd, nil
}

// location builds the new URL from the request.
func (rd *redirect) location(r *http.Request) string {
	scheme := rd.scheme
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	host := rd.host
	if host == "" {
		host = r.Host
	}
	path := r.URL.EscapedPath()
	switch {
	case rd.path != "":
		path = rd.path
	case rd.hasRewrite && strings.HasPrefix(path, rd.prefix):
		path = rd.prefixRewrite + path[len(rd.prefix):]
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	b.WriteString(path)
	if !rd.dropQuery && r.URL.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(r.URL.RawQuery)
	}
	return b.String()
}

func (rd *redirect) serve(w http.ResponseWriter, r *http.Request) {
	w.Header()["Location"] = []string{rd.location(r)}
	w.Header()["Content-Length"] = zeroLength
	w.WriteHeader(rd.status)
}

var zeroLength = []string{"0"}

// fixedResponse is a compiled config.RouteRespond.
type fixedResponse struct {
	status      int
	body        []byte
	contentType []string
	length      []string
}

func compileRespond(c *config.RouteRespond) *fixedResponse {
	f := &fixedResponse{status: c.Status, body: []byte(c.Body), contentType: []string{c.ContentType}}
	if f.status == 0 {
		f.status = http.StatusOK
	}
	if c.ContentType == "" {
		f.contentType = []string{"text/plain; charset=utf-8"}
	}
	f.length = []string{strconv.Itoa(len(f.body))}
	return f
}

func (f *fixedResponse) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = f.contentType
	h["Content-Length"] = f.length
	w.WriteHeader(f.status)
	if r.Method != http.MethodHead {
		w.Write(f.body)
	}
}
