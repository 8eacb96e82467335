package l7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// fuzzConn is an h1Conn with what requestHead.build and h1Body use.
func fuzzConn(br *bufio.Reader) *h1Conn {
	return &h1Conn{
		s:      &h1Server{maxHeader: 8 << 10},
		br:     br,
		bw:     bufio.NewWriter(io.Discard),
		remote: "192.0.2.1:1234",
		hdr:    make(http.Header),
		// The request state a served connection takes from its pool.
		reqScratch: &reqScratch{},
		req:        (&http.Request{}).WithContext(context.Background()),
	}
}

var requestHeadSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a?b=c HTTP/1.0\r\n\r\n",
	"\r\n\nGET / HTTP/1.1\nHost: a\n\n",
	"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n",
	"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
	"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"GET http://b.example:8080/x?y HTTP/1.1\r\nHost: a\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
	"GET /%7Ea%20b HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"G\xc3T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /\xff HTTP/1.1\r\nHost: \xff\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\ntransfer-encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
	"GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n",
	"GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
}

// FuzzRequestHead reads and parses arbitrary bytes as a request head. It
// must never panic; a request it accepts must be well-formed and framed one
// way only; and it must agree with net/http's http.ReadRequest on Method,
// RequestURI, Host, ContentLength and the URL whenever both accept.
//
// The two may differ in one direction only: strata may refuse what
// http.ReadRequest (which leaves some checks to net/http's server)
// accepts, never accept what it refuses. Strata refuses, where
// ReadRequest takes: bare CR, NUL and other controls in values, obsolete
// line folding, whitespace before a colon, a missing or repeated Host,
// HTTP versions other than 1.0 and 1.1 (505), Transfer-Encoding in
// HTTP/1.0 or with a coding other than chunked (501) or chunked not last
// (400), Content-Length with Transfer-Encoding, a repeated Content-Length
// or a list of values, CRLF and bare LF mixed in one head, an
// absolute-form target whose host is not Host's, Expect other than
// 100-continue (417). The one thing strata accepts that ReadRequest does
// not is empty lines before the request line (RFC 9112 §2.2); they are
// dropped by readRequestHead, and only the rest is given to ReadRequest.
func FuzzRequestHead(f *testing.F) {
	for _, s := range requestHeadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := fuzzConn(bufio.NewReaderSize(bytes.NewReader(data), 8<<10))
		h := &c.head
		if err := readRequestHead(c.br, h, 8<<10); err != nil {
			return
		}
		if len(h.raw) > 8<<10 {
			t.Fatalf("head of %d bytes read with a limit of 8 KiB", len(h.raw))
		}
		raw := string(h.raw) // build canonicalizes names in h.raw
		err := h.build(c)
		if err != nil {
			var he *headError
			if !errors.As(err, &he) {
				t.Fatalf("build error %v is not a headError", err)
			}
			switch he.status {
			case 400, 417, 431, 501, 505:
			default:
				t.Fatalf("build refused with status %d", he.status)
			}
			return
		}
		r := c.req
		if r.Method == "" {
			t.Fatal("empty method")
		}
		for i := 0; i < len(r.Method); i++ {
			if !isTokenChar(r.Method[i]) {
				t.Fatalf("method %q is not a token", r.Method)
			}
		}
		if r.RequestURI == "" || r.URL == nil {
			t.Fatalf("request URI %q, URL %v", r.RequestURI, r.URL)
		}
		if r.ProtoMajor != 1 || r.ProtoMinor > 1 || r.Proto != "HTTP/1.0" && r.Proto != "HTTP/1.1" {
			t.Fatalf("protocol %q %d.%d", r.Proto, r.ProtoMajor, r.ProtoMinor)
		}
		if r.ProtoMinor == 1 && !strings.Contains(strings.ToLower(raw), "\nhost:") {
			t.Fatal("HTTP/1.1 request without Host accepted")
		}
		switch h.body {
		case bodyNone:
			if r.Body != http.NoBody || r.ContentLength != 0 || r.TransferEncoding != nil || h.bodyReader != nil {
				t.Fatalf("no body, but Body %T ContentLength %d TE %v", r.Body, r.ContentLength, r.TransferEncoding)
			}
		case bodyLength:
			if r.ContentLength <= 0 || r.TransferEncoding != nil || h.bodyReader == nil || r.Body != h.bodyReader || h.bodyReader.chunked {
				t.Fatalf("length body, but ContentLength %d TE %v", r.ContentLength, r.TransferEncoding)
			}
		case bodyChunked:
			if r.ContentLength != -1 || len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" || h.bodyReader == nil || !h.bodyReader.chunked {
				t.Fatalf("chunked body, but ContentLength %d TE %v", r.ContentLength, r.TransferEncoding)
			}
			if r.ProtoMinor == 0 {
				t.Fatal("chunked body in HTTP/1.0")
			}
		default:
			t.Fatalf("body framing %d", h.body)
		}
		if !httpguts.ValidHostHeader(r.Host) {
			t.Fatalf("Host %q", r.Host)
		}
		for k, vv := range r.Header {
			if k != http.CanonicalHeaderKey(k) {
				t.Fatalf("header name %q not canonical", k)
			}
			if k == "Host" {
				t.Fatal("Host left in the header map")
			}
			for _, v := range vv {
				if strings.ContainsAny(v, "\r\n\x00") || strings.Trim(v, " \t") != v {
					t.Fatalf("header %s value %q", k, v)
				}
			}
		}

		lower := strings.ToLower(raw)
		if strings.Contains(lower, "\ncontent-length:") && strings.Contains(lower, "\ntransfer-encoding:") {
			t.Fatal("Content-Length with Transfer-Encoding accepted")
		}
		want, werr := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if werr != nil {
			t.Fatalf("strata accepts what net/http refuses (%v): %q", werr, raw)
		}
		if want.Method != r.Method || want.RequestURI != r.RequestURI || want.Host != r.Host {
			t.Fatalf("strata read %q %q host %q; net/http %q %q host %q", r.Method, r.RequestURI, r.Host, want.Method, want.RequestURI, want.Host)
		}
		if want.ContentLength != r.ContentLength {
			t.Fatalf("strata ContentLength %d, net/http %d", r.ContentLength, want.ContentLength)
		}
		if want.URL.String() != r.URL.String() || want.URL.Path != r.URL.Path || want.URL.RawQuery != r.URL.RawQuery || want.URL.EscapedPath() != r.URL.EscapedPath() {
			t.Fatalf("strata URL %#v, net/http %#v", r.URL, want.URL)
		}
		if want.Close != r.Close {
			t.Fatalf("strata Close %v, net/http %v", r.Close, want.Close)
		}
	})
}

var chunkedBodySeeds = []string{
	"5\r\nhello\r\n0\r\n\r\n",
	"5;a=b\r\nhello\r\n1 ; x ; y=\"z\"\r\n \r\n0;last\r\nX-T: 1\r\nX-U: 2\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	"00B\r\nhello world\r\n000\r\n\r\n",
	"A\r\n0123456789\r\n0\r\n\r\n",
	"5\nhello\n0\n\n",
	"5\r\nhelloXX0\r\n\r\n",
	"fffffffffffffffff\r\n",
	"-1\r\n\r\n",
	"0x5\r\nhello\r\n0\r\n\r\n",
	"5\r\nhel",
	"0\r\n\r",
	"0\r\nX-T: 1\r\n",
	"5 \r\nhello\r\n0\r\n\r\n",
	"\t5\r\nhello\r\n0\r\n\r\n",
	"5\r\r\nhello\r\n0\r\n\r\n",
	"0\r\nbad trailer\r\n\r\n",
}

// FuzzChunkedBody decodes a chunked request body with h1Body and with
// net/http (the same bytes as the body of a request http.ReadRequest
// reads). h1Body must never panic; it must never accept a body net/http
// refuses but for whitespace before an extension's ";" (it refuses more:
// whitespace before a chunk size, text after it that is no extension,
// control bytes in an extension, a trailer line that is no field); when both accept the body they must give the same
// bytes and leave the same bytes after it; and whatever h1Body accepts, it
// must stop at the end of the trailer section, reading nothing of what
// follows.
func FuzzChunkedBody(f *testing.F) {
	for _, s := range chunkedBodySeeds {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		src := bytes.NewReader(data)
		c := fuzzConn(bufio.NewReaderSize(src, 8<<10))
		b := &h1Body{c: c, chunked: true}
		var got []byte
		var err error
		buf := make([]byte, int(step)+1)
		for {
			var n int
			n, err = b.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil || len(got) > len(data) {
				break
			}
		}
		if len(got) > len(data) {
			t.Fatalf("decoded %d bytes from %d", len(got), len(data))
		}
		if err == io.EOF {
			err = nil
		}
		rest := c.br.Buffered() + src.Len()
		if err == nil {
			// What was consumed ends with the empty line that ends the
			// trailer section, and what follows is left whole.
			used := data[:len(data)-rest]
			if !bytes.HasSuffix(used, []byte("\r\n\r\n")) {
				t.Fatalf("body accepted, but what it consumed ends with %q", used[max(0, len(used)-8):])
			}
			if !b.close() {
				t.Fatal("close after a whole body reports the connection unusable")
			}
		} else if b.close() {
			t.Fatalf("close after error %v reports the connection usable", err)
		}
		if _, rerr := b.Read(buf); rerr == nil {
			t.Fatal("read after close succeeded")
		}

		head := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		wbr := bufio.NewReader(io.MultiReader(strings.NewReader(head), bytes.NewReader(data)))
		req, rerr := http.ReadRequest(wbr)
		if rerr != nil {
			t.Fatalf("net/http refused the fixed head: %v", rerr)
		}
		want, werr := io.ReadAll(req.Body)
		// Whitespace before a chunk extension's ";" is in RFC 9112's
		// grammar (BWS, §7.1.1), which h1Body follows and net/http
		// does not: the one body h1Body reads and net/http refuses.
		bws := bytes.Contains(data, []byte(" ;")) || bytes.Contains(data, []byte("\t;"))
		if err == nil && werr != nil && !bws {
			// One direction only: h1Body may refuse what net/http
			// reads, never read what net/http refuses.
			t.Fatalf("h1Body accepts a body net/http refuses (%v): %q", werr, data)
		}
		if err != nil || werr != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("h1Body decoded %q, net/http %q", got, want)
		}
		rb, _ := io.ReadAll(wbr)
		if wrest := len(rb); wrest != rest {
			t.Fatalf("h1Body left %d bytes after the body, net/http %d", rest, wrest)
		}
	})
}
