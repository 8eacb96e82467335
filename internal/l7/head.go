package l7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
)

// maxResponseHead bounds the status line plus all response header lines.
// A backend that sends more is treated as broken (502), as nginx does with
// proxy_buffer_size, so that one backend cannot make the proxy buffer
// without limit.
const maxResponseHead = 64 << 10

// maxHeaderFields bounds the number of response header lines, for the same
// reason as maxResponseHead.
const maxHeaderFields = 256

var (
	errHeadTooLarge  = errors.New("response head too large")
	errTooManyFields = errors.New("too many response header fields")
)

// field is one response header line as offsets into the raw head, so that
// the whole head becomes one string and every name and value is a
// substring of it: two allocations per response instead of two per field.
type field struct {
	nameStart, nameEnd   int32
	valueStart, valueEnd int32
}

// responseHead is a parsed HTTP/1.x status line and header block. The
// framing fields are decided while parsing so that the data path never
// looks a header up again.
type responseHead struct {
	raw    []byte // the head as read, reused between responses
	fields []field
	minor  int // HTTP/1.minor
	status int

	// contentLength is the body length, or -1 when the body is chunked or
	// delimited by the connection closing.
	contentLength int64
	chunked       bool
	// close is true when the backend will not keep the connection open
	// after this response.
	close bool
	// connTokens is true when a Connection header named headers other than
	// close and keep-alive, which must then be dropped (RFC 9110 §7.6.1).
	connTokens bool
	// hasContentType says whether the backend sent a Content-Type, so that
	// net/http does not sniff and invent one.
	hasContentType bool
}

func (h *responseHead) reset() {
	h.raw = h.raw[:0]
	h.fields = h.fields[:0]
	h.minor, h.status = 0, 0
	h.contentLength = -1
	h.chunked, h.close, h.connTokens, h.hasContentType = false, false, false, false
}

func (h *responseHead) name(f field) []byte  { return h.raw[f.nameStart:f.nameEnd] }
func (h *responseHead) value(f field) []byte { return h.raw[f.valueStart:f.valueEnd] }

// readResponseHead reads one response head (status line through the empty
// line) from br into h.raw and parses it. It returns the number of bytes
// taken from br, so that callers can tell a connection closed before any
// response (a stale keep-alive connection, safe to retry) from a broken
// response.
func readResponseHead(br *bufio.Reader, h *responseHead) (int, error) {
	h.reset()
	var n int
	var err error
	h.raw, n, err = readHead(br, h.raw[:0], maxResponseHead)
	if err != nil {
		return n, err
	}
	return n, parseResponseHead(h)
}

// readHead reads one message head, the start line through the empty line,
// appending it to buf; empty lines before the start line are skipped (RFC
// 9112 §2.2). It returns the head, the number of bytes taken from br, and
// errHeadTooLarge when the head passes max. Request and response heads
// are both read here.
func readHead(br *bufio.Reader, buf []byte, max int) ([]byte, int, error) {
	n := 0
	lineStart := 0
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		if len(buf)+len(chunk) > max {
			return buf, n, errHeadTooLarge
		}
		buf = append(buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return buf, n, err
		}
		line := buf[lineStart:]
		lineStart = len(buf)
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			if len(buf) == len(line) {
				buf = buf[:0]
				lineStart = 0
				continue
			}
			return buf, n, nil
		}
	}
}

// parseResponseHead parses h.raw, a complete head that ends with an empty
// line, into h. It accepts bare LF line ends (RFC 9112 §2.2) and rejects
// obsolete line folding, invalid field names, and conflicting framing.
func parseResponseHead(h *responseHead) error {
	raw := h.raw
	pos := 0
	nextLine := func() (start, end int, ok bool) {
		i := bytes.IndexByte(raw[pos:], '\n')
		if i < 0 {
			return 0, 0, false
		}
		start, end = pos, pos+i
		pos = end + 1
		if end > start && raw[end-1] == '\r' {
			end--
		}
		return start, end, true
	}

	start, end, ok := nextLine()
	if !ok {
		return errors.New("response head without line end")
	}
	if err := parseStatusLine(raw[start:end], h); err != nil {
		return err
	}
	h.close = h.minor == 0 // HTTP/1.0 closes unless it says keep-alive
	keepAlive10, closeTok := false, false
	sawCL, sawTE := false, false
	var teFinalChunked bool
	for {
		start, end, ok = nextLine()
		if !ok {
			return errors.New("response head not terminated by an empty line")
		}
		if start == end {
			break
		}
		f, name, value, problem := splitField(raw, start, end, false)
		switch problem {
		case fieldFolded:
			return errors.New("obsolete line folding in response header")
		case fieldMalformed:
			return fmt.Errorf("malformed response header line %q", truncate(raw[start:end]))
		case fieldBadName:
			return fmt.Errorf("invalid response header name %q", truncate(name))
		case fieldBadValue:
			return fmt.Errorf("invalid byte in response header %q", truncate(name))
		}
		if len(h.fields) == maxHeaderFields {
			return errTooManyFields
		}
		canonicalize(name)
		h.fields = append(h.fields, f)
		switch string(name) {
		case "Content-Length":
			n, ok := parseContentLength(value)
			if !ok {
				return fmt.Errorf("invalid response Content-Length %q", truncate(value))
			}
			if sawCL && n != h.contentLength {
				return errors.New("conflicting response Content-Length values")
			}
			sawCL = true
			h.contentLength = n
		case "Transfer-Encoding":
			sawTE = true
			teFinalChunked = lastTokenIs(value, "chunked")
		case "Connection":
			forEachToken(value, func(tok []byte) {
				switch {
				case bytes.EqualFold(tok, []byte("close")):
					h.close, closeTok = true, true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					keepAlive10 = true
				default:
					h.connTokens = true
				}
			})
		case "Content-Type":
			h.hasContentType = true
		}
	}
	if h.minor == 0 && keepAlive10 && !closeTok {
		h.close = false
	}
	if sawTE {
		// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and a
		// response whose final coding is not chunked runs until close.
		// HTTP/1.0 has no transfer codings, so the same rule keeps us safe.
		h.contentLength = -1
		if teFinalChunked && h.minor == 1 {
			h.chunked = true
		} else {
			h.close = true
		}
		if sawCL {
			// A message with both is a smuggling risk; never reuse the
			// connection after it (RFC 9112 §6.1).
			h.close = true
		}
	}
	if !sawTE && !sawCL {
		h.contentLength = -1
	}
	return nil
}

// fieldProblem is what splitField found wrong with a header line; the
// request and response parsers word it each for their own errors.
type fieldProblem uint8

const (
	fieldOK fieldProblem = iota
	fieldFolded
	fieldMalformed
	fieldBadName
	fieldBadValue
)

// splitField parses the header line raw[start:end]: a token name, a colon,
// and a value trimmed of optional whitespace. strict refuses every control
// byte in the value but HTAB (requests, RFC 9110 §5.5); otherwise only CR
// and NUL are refused, which is what a proxy must not pass on (responses).
// The field's offsets are into raw; name and value are slices of it.
func splitField(raw []byte, start, end int, strict bool) (f field, name, value []byte, p fieldProblem) {
	line := raw[start:end]
	if line[0] == ' ' || line[0] == '\t' {
		return f, nil, nil, fieldFolded
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return f, nil, nil, fieldMalformed
	}
	name = line[:colon]
	for _, c := range name {
		if !isTokenChar(c) {
			return f, name, nil, fieldBadName
		}
	}
	vs, ve := colon+1, len(line)
	for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
		vs++
	}
	for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
		ve--
	}
	value = line[vs:ve]
	for _, c := range value {
		if strict && (c < ' ' && c != '\t' || c == 0x7f) || !strict && (c == '\r' || c == 0) {
			return f, name, value, fieldBadValue
		}
	}
	f = field{
		nameStart: int32(start), nameEnd: int32(start + colon),
		valueStart: int32(start + vs), valueEnd: int32(start + ve),
	}
	return f, name, value, fieldOK
}

// parseStatusLine parses "HTTP/1.x SSS reason".
func parseStatusLine(line []byte, h *responseHead) error {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return fmt.Errorf("malformed status line %q", truncate(line))
	}
	switch line[7] {
	case '0':
		h.minor = 0
	case '1':
		h.minor = 1
	default:
		return fmt.Errorf("unsupported protocol in status line %q", truncate(line))
	}
	s := line[9:12]
	if s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return fmt.Errorf("malformed status code in %q", truncate(line))
	}
	if len(line) > 12 && line[12] != ' ' {
		return fmt.Errorf("malformed status line %q", truncate(line))
	}
	h.status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	return nil
}

// parseContentLength accepts 1*DIGIT, and also a comma-separated list of
// identical values, which RFC 9110 §8.6 allows a recipient to collapse.
func parseContentLength(v []byte) (int64, bool) {
	n := int64(-1)
	ok := true
	forEachToken(v, func(tok []byte) {
		if !ok {
			return
		}
		if len(tok) == 0 || len(tok) > 18 {
			ok = false
			return
		}
		var x int64
		for _, c := range tok {
			if c < '0' || c > '9' {
				ok = false
				return
			}
			x = x*10 + int64(c-'0')
		}
		if n >= 0 && x != n {
			ok = false
			return
		}
		n = x
	})
	return n, ok && n >= 0
}

// forEachToken calls fn with every comma-separated element of v, trimmed of
// optional whitespace; empty elements are skipped.
func forEachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.Trim(tok, " \t")
		if len(tok) > 0 {
			fn(tok)
		}
	}
}

func lastTokenIs(v []byte, want string) bool {
	last := []byte(nil)
	forEachToken(v, func(tok []byte) { last = tok })
	return bytes.EqualFold(last, []byte(want))
}

// canonicalize rewrites a valid header name in place to its canonical form
// ("content-type" → "Content-Type"), as textproto does, so that names can
// be used as http.Header keys without another allocation.
func canonicalize(name []byte) {
	upper := true
	for i, c := range name {
		if upper && 'a' <= c && c <= 'z' {
			name[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			name[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool { return tokenTable[c] }

var tokenTable = alnumAnd("!#$%&'*+-.^_`|~")

// alnumAnd is a byte class: ASCII letters and digits, and extra.
func alnumAnd(extra string) (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	return t
}

// truncate keeps error messages short when a backend sends garbage.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
