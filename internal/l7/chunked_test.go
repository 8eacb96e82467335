package l7

import (
	"bufio"
	"bytes"
	"io"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
)

func TestCopyChunked(t *testing.T) {
	tests := []struct {
		desc, in, body, trailer, err string
	}{
		{desc: "two chunks", in: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", body: "hello world"},
		{desc: "extensions and upper-case hex", in: "A;name=val\r\n0123456789\r\n0\r\n\r\n", body: "0123456789"},
		{desc: "trailer", in: "1\r\nx\r\n0\r\nX-Sum: 7\r\n\r\n", body: "x", trailer: "7"},
		{desc: "missing CRLF after data", in: "1\r\nxy\r\n0\r\n\r\n", err: "malformed"},
		{desc: "bad size", in: "zz\r\n", err: "malformed"},
		{desc: "huge size", in: "fffffffffffffffff\r\n", err: "malformed"},
		{desc: "truncated", in: "5\r\nhel", err: "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := copyChunked(rec, bufio.NewReaderSize(strings.NewReader(tc.in), 16), &exchange{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Body.String() != tc.body {
				t.Fatalf("body %q, want %q", rec.Body.String(), tc.body)
			}
			if got := rec.Header().Get("Trailer:X-Sum"); got != tc.trailer {
				t.Fatalf("trailer %q, want %q", got, tc.trailer)
			}
		})
	}
}

// FuzzCopyChunked checks the chunked decoder against net/http's: it must
// never panic, and when both accept the input they must agree on the body.
func FuzzCopyChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n",
		"1\nx\n0\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec := httptest.NewRecorder()
		err := copyChunked(rec, bufio.NewReaderSize(bytes.NewReader(data), 16), &exchange{})
		want, werr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data)))
		if err == nil && werr == nil && !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("decoded %q, net/http decoded %q", rec.Body.Bytes(), want)
		}
	})
}
