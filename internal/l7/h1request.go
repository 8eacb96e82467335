package l7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// headError is a request that is refused before the handler sees it, with
// the status the client gets.
type headError struct {
	status int
	msg    string
}

func (e *headError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func badRequest(format string, args ...any) error {
	return &headError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// errIdleEOF is a connection that closed before a request began: the
// normal end of a keep-alive connection, answered with nothing.
var errIdleEOF = errors.New("connection closed between requests")

// body framings of a request.
const (
	bodyNone = iota
	bodyLength
	bodyChunked
)

// requestHead is the raw head of one request and what parsing it decided.
type requestHead struct {
	raw    []byte
	fields []field

	minor        int
	close        bool // the connection ends after this request
	body         int  // bodyNone, bodyLength or bodyChunked
	length       int64
	continueWait bool // Expect: 100-continue
	bodyReader   *h1Body
}

// urlScratch is the URL of the connection's current request, reused.
type urlScratch struct{ u url.URL }

// readRequestHead reads a request head, the request line through the empty
// line, into h.raw. Empty lines before the request line are skipped (RFC
// 9112 §2.2). A head longer than max is refused with 431.
func readRequestHead(br *bufio.Reader, h *requestHead, max int) error {
	var err error
	h.raw, _, err = readHead(br, h.raw[:0], max) // head.go
	switch {
	case err == errHeadTooLarge:
		return &headError{status: http.StatusRequestHeaderFieldsTooLarge, msg: "request header too large"}
	case err != nil && len(h.raw) == 0:
		return errIdleEOF
	}
	return err // nil, or a timeout or a cut connection: nothing to answer
}

// build parses c.head.raw into c.req, c.hdr and c.url.
func (h *requestHead) build(c *h1Conn) error {
	h.fields = h.fields[:0]
	h.close, h.body, h.length, h.continueWait, h.bodyReader = false, bodyNone, 0, false, nil
	raw := h.raw
	pos := 0
	// Lines end in CRLF or, as RFC 9112 §2.2 lets a recipient accept and
	// nginx does, in a bare LF; but one head uses one or the other
	// throughout. A head that mixes them is no client's way of writing:
	// it is how a field hidden behind a bare LF in one parser's eyes
	// becomes a field of its own in another's.
	lines, crlf, mixed := 0, false, false
	nextLine := func() (start, end int) {
		i := bytes.IndexByte(raw[pos:], '\n')
		start, end = pos, pos+i
		pos = end + 1
		cr := end > start && raw[end-1] == '\r'
		if cr {
			end--
		}
		if lines == 0 {
			crlf = cr
		} else if cr != crlf {
			mixed = true
		}
		lines++
		return start, end
	}
	ls, le := nextLine()
	line := raw[ls:le]
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return badRequest("malformed request line")
	}
	method, target, proto := line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	for _, ch := range method {
		if !isTokenChar(ch) {
			return badRequest("invalid method")
		}
	}
	for _, ch := range target {
		if ch <= ' ' || ch == 0x7f {
			return badRequest("invalid request target")
		}
	}
	switch string(proto) {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
		h.minor = 0
	default:
		if len(proto) == 8 && string(proto[:5]) == "HTTP/" {
			return &headError{status: http.StatusHTTPVersionNotSupported, msg: "HTTP version not supported"}
		}
		return badRequest("malformed request line")
	}
	h.close = h.minor == 0

	// Fields: validated and canonicalized in place, so that names and
	// values can be substrings of one string made from the head.
	hosts := 0
	keepAlive, closeTok := false, false
	sawCL, sawTE := false, false
	var teValue []byte
	for {
		start, end := nextLine()
		if start == end {
			break
		}
		f, name, value, problem := splitField(raw, start, end, true) // head.go
		switch problem {
		case fieldFolded:
			return badRequest("obsolete line folding")
		case fieldMalformed:
			return badRequest("malformed header line")
		case fieldBadName:
			return badRequest("invalid header name %q", truncate(name))
		case fieldBadValue:
			return badRequest("invalid byte in header %q", truncate(name))
		}
		if len(h.fields) == maxHeaderFields {
			return &headError{status: http.StatusRequestHeaderFieldsTooLarge, msg: "too many header fields"}
		}
		canonicalize(name)
		h.fields = append(h.fields, f)
		switch string(name) {
		case "Host":
			hosts++
		case "Content-Length":
			// One field with one value: RFC 9110 §8.6 lets a recipient
			// take "3, 3" or two equal fields as 3, but a proxy that
			// repairs what another parser may read otherwise is where
			// smuggling starts, so it is refused, as nginx does.
			if sawCL {
				return badRequest("repeated Content-Length")
			}
			n, ok := parseContentLength(value)
			if !ok || bytes.IndexByte(value, ',') >= 0 {
				return badRequest("invalid Content-Length")
			}
			sawCL, h.length = true, n
		case "Transfer-Encoding":
			if sawTE {
				return badRequest("repeated Transfer-Encoding")
			}
			sawTE, teValue = true, value
		case "Connection":
			forEachToken(value, func(tok []byte) {
				switch {
				case bytes.EqualFold(tok, []byte("close")):
					closeTok = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					keepAlive = true
				}
			})
		case "Expect":
			if !bytes.EqualFold(value, []byte("100-continue")) {
				return &headError{status: http.StatusExpectationFailed, msg: "unsupported expectation"}
			}
			h.continueWait = h.minor == 1
		}
	}
	switch {
	case closeTok:
		h.close = true
	case h.minor == 0 && keepAlive:
		h.close = false
	}
	if mixed {
		return badRequest("CRLF and bare LF line ends mixed in one head")
	}
	if h.minor == 1 && hosts == 0 || hosts > 1 {
		return badRequest("missing or repeated Host header")
	}
	switch {
	case sawTE:
		if h.minor == 0 {
			return badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		if sawCL {
			// Both framings: RFC 9112 §6.1 lets a server read it as
			// chunked and close after, or refuse it. A message that a
			// parser in front of strata may have framed by its length
			// is refused, as nginx and Envoy do.
			return badRequest("both Content-Length and Transfer-Encoding")
		}
		if err := checkTransferEncoding(teValue); err != nil {
			return err
		}
		h.body, h.length = bodyChunked, -1
	case sawCL && h.length > 0:
		h.body = bodyLength
	}

	// One string holds the whole head; every value below is part of it.
	all := string(raw)
	r := c.req
	r.Method = methodString(method, all[ls:ls+sp1])
	r.RequestURI = all[ls+sp1+1 : ls+sp2]
	if r.Method == http.MethodConnect {
		// A reverse proxy opens no tunnels to where a client names:
		// CONNECT would make it an open forward proxy.
		return &headError{status: http.StatusNotImplemented, msg: "CONNECT is not supported"}
	}
	if err := c.url.parse(r.RequestURI); err != nil {
		return badRequest("invalid request target")
	}
	if u := &c.url.u; u.Opaque != "" || u.Scheme != "" && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil) {
		// The absolute form is for http and https URIs (RFC 9112
		// §3.2.2); "foo:/admin" is no request for this server. An http
		// URI without a host is invalid (RFC 9110 §4.2.1), and one with
		// userinfo is to be treated as an error (§4.2.4).
		return badRequest("invalid request target")
	}
	r.URL = &c.url.u
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	if h.minor == 0 {
		r.Proto, r.ProtoMinor = "HTTP/1.0", 0
	}
	hdr := c.hdr
	clear(hdr)
	// One array backs every value slice; a handler that appends to one
	// gets a copy (capacity 1), and a request that outlives this one in
	// another goroutine keeps its own array.
	vals := make([]string, len(h.fields))
	r.Host = ""
	for i, f := range h.fields {
		key := all[f.nameStart:f.nameEnd]
		vals[i] = all[f.valueStart:f.valueEnd]
		if key == "Host" {
			r.Host = vals[i]
			continue // net/http moves Host out of the header too
		}
		if old, ok := hdr[key]; ok {
			hdr[key] = append(old, vals[i])
		} else {
			hdr[key] = vals[i : i+1 : i+1]
		}
	}
	if u := &c.url.u; u.Host != "" {
		// A client must send a Host identical to the authority of an
		// absolute-form target (RFC 9110 §7.2). Rather than pick one,
		// as RFC 9112 §3.2.2 has an origin server do, a request that
		// names two hosts is refused, as HAProxy does: a proxy in front
		// that routed by the other one would disagree with strata.
		if hosts > 0 && !strings.EqualFold(r.Host, u.Host) {
			return badRequest("Host differs from the request target's authority")
		}
		r.Host = u.Host
	}
	if !httpguts.ValidHostHeader(r.Host) {
		// As net/http's server refuses it (and nginx): a Host with a
		// space, a slash or a quote is no host, and passed on it would
		// reach routing, logs and the backend's own URL building.
		return badRequest("invalid Host")
	}
	r.Header = hdr
	r.Close = h.close
	r.RemoteAddr = c.remote
	r.Trailer = nil
	r.TransferEncoding = nil
	r.ContentLength = 0
	r.Body = http.NoBody
	switch h.body {
	case bodyLength:
		r.ContentLength = h.length
		h.bodyReader = &h1Body{c: c, left: h.length}
		r.Body = h.bodyReader
	case bodyChunked:
		r.ContentLength = -1
		r.TransferEncoding = chunkedTE
		h.bodyReader = &h1Body{c: c, chunked: true}
		r.Body = h.bodyReader
	}
	return nil
}

var chunkedTE = []string{"chunked"}

// checkTransferEncoding accepts a Transfer-Encoding of "chunked" alone.
// Chunked that is not the last coding, or comes twice, or an empty list
// element, leave the body's length unknown: 400 (RFC 9112 §6.3). A list
// that ends in chunked after other codings is framed but asks for a
// decoding strata does not do: 501 (RFC 9112 §6.1).
func checkTransferEncoding(v []byte) error {
	codings, chunked, last := 0, 0, false
	for len(v) > 0 || codings == 0 {
		elem := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
			if len(v) == 0 {
				return badRequest("invalid Transfer-Encoding") // a trailing comma
			}
		} else {
			v = nil
		}
		elem = trimOWS(elem)
		if len(elem) == 0 {
			return badRequest("invalid Transfer-Encoding")
		}
		codings++
		last = bytes.EqualFold(elem, []byte("chunked"))
		if last {
			chunked++
		}
	}
	switch {
	case !last || chunked > 1:
		return badRequest("chunked is not the final and only chunked coding of Transfer-Encoding")
	case codings > 1:
		return &headError{status: http.StatusNotImplemented, msg: "unsupported transfer encoding"}
	}
	return nil
}

// methodString returns the method as a constant for the common ones, so
// that comparing and logging them costs nothing, and fallback otherwise.
func methodString(m []byte, fallback string) string {
	switch string(m) {
	case "GET":
		return http.MethodGet
	case "HEAD":
		return http.MethodHead
	case "POST":
		return http.MethodPost
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "OPTIONS":
		return http.MethodOptions
	case "PATCH":
		return http.MethodPatch
	}
	return fallback
}

// parse sets u from a request target. The origin form whose path has
// only bytes that net/url neither unescapes nor escapes, nearly every
// request, is split by hand; anything else goes through
// url.ParseRequestURI, so that Path, RawPath (kept when the path as sent
// differs from its escaping, as with "!" or "(") and ForceQuery (a
// target ending in "?") are what net/http would set.
func (s *urlScratch) parse(target string) error {
	if target[0] == '/' {
		path, query, hasQuery := strings.Cut(target, "?")
		if plainPath(path) && (!hasQuery || query != "") {
			s.u = url.URL{Path: path, RawQuery: query}
			return nil
		}
	}
	if target == "*" {
		s.u = url.URL{Path: "*"}
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return err
	}
	s.u = *u
	return nil
}

// plainPath reports whether every byte of p is one that url.URL's
// EscapedPath leaves as it is: unreserved characters, and the reserved
// ones net/url allows in a path.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if !plainPathTable[p[i]] {
			return false
		}
	}
	return true
}

var plainPathTable = alnumAnd("-._~$&+,/:;=@") // head.go

// clearRequest drops what the request referenced, so that a connection
// waiting for its next request pins nothing of the last one.
func (c *h1Conn) clearRequest() {
	r := c.req
	r.Header, r.URL, r.Body, r.Host, r.RequestURI = nil, nil, nil, "", ""
	c.url.u = url.URL{}
	clear(c.hdr)
	if cap(c.head.raw) > 16<<10 {
		c.head.raw = nil // one huge head should not pin its buffer
	}
}
