package l7

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func parse(t testing.TB, s string) (*responseHead, int, error) {
	var h responseHead
	n, err := readResponseHead(bufio.NewReaderSize(strings.NewReader(s), 16), &h)
	return &h, n, err
}

func TestParseResponseHead(t *testing.T) {
	tests := []struct {
		desc    string
		in      string
		status  int
		length  int64
		chunked bool
		close   bool
		fields  int
		err     string
	}{
		{desc: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n", status: 200, length: 19, fields: 1},
		{desc: "bare LF and lower-case names", in: "HTTP/1.1 404 Not Found\ncontent-length: 0\nx-a:  b \n\n", status: 404, length: 0, fields: 2},
		{desc: "no reason phrase", in: "HTTP/1.1 204\r\n\r\n", status: 204, length: -1},
		{desc: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 200, length: -1, chunked: true, fields: 1},
		{desc: "TE not ending in chunked reads to close", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", status: 200, length: -1, close: true, fields: 1},
		{desc: "TE and CL: TE wins, no reuse", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, length: -1, chunked: true, close: true, fields: 2},
		{desc: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 1\r\n\r\n", status: 200, length: 1, close: true, fields: 2},
		{desc: "HTTP/1.0 closes by default", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", status: 200, length: 1, close: true, fields: 1},
		{desc: "HTTP/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", status: 200, length: 1, fields: 2},
		{desc: "repeated equal lengths collapse", in: "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n", status: 200, length: 3, fields: 2},
		{desc: "leading empty lines skipped", in: "\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", status: 200, length: -1},
		{desc: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", err: "conflicting"},
		{desc: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: "invalid response Content-Length"},
		{desc: "obs-fold", in: "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", err: "folding"},
		{desc: "space before colon", in: "HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n", err: "invalid response header name"},
		{desc: "no colon", in: "HTTP/1.1 200 OK\r\nX-A\r\n\r\n", err: "malformed response header line"},
		{desc: "HTTP/2 status line", in: "HTTP/2 200 OK\r\n\r\n", err: "malformed status line"},
		{desc: "short status", in: "HTTP/1.1 20 OK\r\n\r\n", err: "malformed"},
		{desc: "status 099", in: "HTTP/1.1 099 OK\r\n\r\n", err: "malformed status code"},
		{desc: "truncated head", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", err: "EOF"},
		{desc: "head too large", in: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", maxResponseHead) + "\r\n\r\n", err: "too large"},
		{desc: "too many fields", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", maxHeaderFields+1) + "\r\n", err: "too many"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			h, _, err := parse(t, tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.status != tc.status || h.contentLength != tc.length || h.chunked != tc.chunked || h.close != tc.close || len(h.fields) != tc.fields {
				t.Fatalf("got status %d length %d chunked %v close %v fields %d, want %d %d %v %v %d",
					h.status, h.contentLength, h.chunked, h.close, len(h.fields), tc.status, tc.length, tc.chunked, tc.close, tc.fields)
			}
		})
	}
}

func TestParseResponseHeadCanonicalizes(t *testing.T) {
	h, _, err := parse(t, "HTTP/1.1 200 OK\r\nx-request-ID: 7\r\ncontent-TYPE: text/plain\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range h.fields {
		names = append(names, string(h.name(f))+"="+string(h.value(f)))
	}
	if got := strings.Join(names, " "); got != "X-Request-Id=7 Content-Type=text/plain" || !h.hasContentType {
		t.Fatalf("fields %q (content type seen %v)", got, h.hasContentType)
	}
}

// FuzzParseResponseHead feeds arbitrary bytes to the head reader: it must
// never panic, must stay within its size bounds, and what it accepts must
// be self-consistent. Whenever net/http's http.ReadResponse accepts the
// same first head too, the two must agree (sameAsReadResponse).
func FuzzParseResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, x-a\r\n\r\n",
		"HTTP/1.0 304 Not Modified\nConnection: keep-alive\n\n",
		"\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nx-request-ID: 7\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nX-Empty:\r\nX-Space:  a  b \t\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
		"HTTP/1.1 200\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var h responseHead
		br := bufio.NewReaderSize(bytes.NewReader(data), 64)
		for i := range 4 { // several heads on one connection, as with 1xx
			n, err := readResponseHead(br, &h)
			if n > len(data) {
				t.Fatalf("consumed %d of %d bytes", n, len(data))
			}
			if err != nil {
				return
			}
			if len(h.raw) > maxResponseHead || len(h.fields) > maxHeaderFields {
				t.Fatalf("bounds exceeded: %d bytes, %d fields", len(h.raw), len(h.fields))
			}
			if h.status < 100 || h.status > 999 || h.contentLength < -1 || (h.chunked && h.contentLength != -1) {
				t.Fatalf("inconsistent head: status %d length %d chunked %v", h.status, h.contentLength, h.chunked)
			}
			for _, fl := range h.fields {
				name, value := h.name(fl), h.value(fl)
				if len(name) == 0 || bytes.ContainsAny(name, ": \r\n") || bytes.ContainsAny(value, "\r\n") {
					t.Fatalf("bad field %q: %q", name, value)
				}
			}
			if i == 0 {
				sameAsReadResponse(t, data, &h)
			}
			// The data path turns the head into a header map; it must
			// cope with whatever the parser accepted.
			hdr := make(map[string][]string)
			copyHeader(hdr, &h)
		}
	})
}

// sameAsReadResponse parses data with http.ReadResponse (as the answer to
// a GET) and, when it accepts, checks that h, strata's parse of the same
// first head, agrees on the status, every header field but those net/http
// rewrites, and the framing.
//
// Where strata deliberately differs, the two are not compared: strata
// skips empty lines before the status line (RFC 9112 §2.2), accepts a
// Content-Length list of equal values ("3, 3", RFC 9110 §8.6), and keeps
// Content-Length of 1xx, 204 and 304 responses as sent (they have no body
// either way). It treats Transfer-Encoding in HTTP/1.0 as running until
// close where net/http ignores it, and never reuses a connection after a
// response with both Transfer-Encoding and Content-Length. net/http marks
// a response whose body runs until close as Close, where strata's close
// says only whether the backend asked for it (the data path sees the
// length of -1). net/http drops Transfer-Encoding and Content-Length from
// the header once it has framed the body, drops Connection: close, and
// adds Cache-Control for Pragma: no-cache.
func sameAsReadResponse(t *testing.T, data []byte, h *responseHead) {
	t.Helper()
	if len(data) > 0 && (data[0] == '\r' || data[0] == '\n') {
		return
	}
	req, _ := http.NewRequest(http.MethodGet, "http://a/", nil)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
	if err != nil {
		return
	}
	if resp.StatusCode != h.status || resp.ProtoMinor != h.minor || resp.ProtoMajor != 1 {
		t.Fatalf("status %d HTTP/1.%d, ReadResponse's %d %s", h.status, h.minor, resp.StatusCode, resp.Proto)
	}
	got := http.Header{}
	var te, cl, pragma bool
	for _, f := range h.fields {
		name := string(h.name(f))
		got[name] = append(got[name], string(h.value(f)))
		te = te || name == "Transfer-Encoding"
		cl = cl || name == "Content-Length"
		pragma = pragma || name == "Pragma"
	}
	skip := map[string]bool{"Transfer-Encoding": true, "Content-Length": true, "Connection": true, "Cache-Control": pragma}
	for name, want := range resp.Header {
		if !skip[name] && !slices.Equal(got[name], want) {
			t.Fatalf("header %q = %q, ReadResponse's %q", name, got[name], want)
		}
	}
	for name := range got {
		if _, ok := resp.Header[name]; !ok && !skip[name] {
			t.Fatalf("header %q = %q, which ReadResponse does not have", name, got[name])
		}
	}
	if !slices.Equal(got["Connection"], resp.Header["Connection"]) && !slices.ContainsFunc(got["Connection"], func(v string) bool { return strings.Contains(strings.ToLower(v), "close") }) {
		t.Fatalf("Connection %q, ReadResponse's %q", got["Connection"], resp.Header["Connection"])
	}
	if te && (h.minor == 0 || cl) {
		return
	}
	if noBody := h.status/100 == 1 || h.status == 204 || h.status == 304; !noBody && h.contentLength != resp.ContentLength {
		t.Fatalf("Content-Length %d, ReadResponse's %d", h.contentLength, resp.ContentLength)
	}
	if chunked := slices.Equal(resp.TransferEncoding, []string{"chunked"}); h.chunked != chunked {
		t.Fatalf("chunked %v, ReadResponse's Transfer-Encoding %q", h.chunked, resp.TransferEncoding)
	}
	if bounded := h.contentLength >= 0 || h.chunked; bounded && h.close != resp.Close {
		t.Fatalf("close %v, ReadResponse's %v", h.close, resp.Close)
	}
}
