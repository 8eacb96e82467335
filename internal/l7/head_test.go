package l7

import (
	"bufio"
	"bytes"
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
// be self-consistent.
func FuzzParseResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, x-a\r\n\r\n",
		"HTTP/1.0 304 Not Modified\nConnection: keep-alive\n\n",
		"\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\nContent-Length: 2\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var h responseHead
		br := bufio.NewReaderSize(bytes.NewReader(data), 64)
		for range 4 { // several heads on one connection, as with 1xx
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
			// The data path turns the head into a header map; it must
			// cope with whatever the parser accepted.
			hdr := make(map[string][]string)
			copyHeader(hdr, &h)
		}
	})
}
