package l7

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// TestSmugglingRefused sends ambiguous framing on raw TCP. Where RFC 9112
// lets a server either repair such a message or refuse it, the listener
// refuses it with 400 and closes the connection (h1request.go, h1body.go),
// as nginx and Envoy do; and strata frames every request it forwards anew
// (its own Content-Length or chunked encoding), so no client framing
// reaches a backend.
func TestSmugglingRefused(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A chunked body is read as it is forwarded: a request whose
		// body turns out bad may reach the backend, but never whole.
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	pool := newPool(t, "p", be.addr)
	_, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": pool})
	addr := strings.TrimPrefix(url, "http://")
	tests := []struct {
		desc, raw string
		status    int
	}{
		{desc: "two different Content-Length fields", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", status: 400},
		{desc: "Content-Length list of different values", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde", status: 400},
		{desc: "signed Content-Length", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd", status: 400},
		{desc: "space before the colon", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "coding other than chunked before chunked", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 501},
		{desc: "two Transfer-Encoding fields", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "two Transfer-Encoding fields, chunked first", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "unknown coding", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "chunked not the last coding", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "chunked twice", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "chunked and an empty list element", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "empty Transfer-Encoding", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\nContent-Length: 5\r\n\r\nabcde", status: 400},
		{desc: "chunked with a parameter", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "Content-Length and chunked", raw: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
		{desc: "chunked and Content-Length", raw: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "two equal Content-Length fields", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", status: 400},
		{desc: "Content-Length list of equal values", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd", status: 400},
		{desc: "bare LF field after CRLF lines", raw: "POST / HTTP/1.1\r\nHost: x\r\nX-A: b\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\nabcd", status: 400},
		{desc: "CRLF field after bare LF lines", raw: "POST / HTTP/1.1\nHost: x\nContent-Length: 4\r\n\nabcd", status: 400},
		{desc: "bare CR ending a field", raw: "POST / HTTP/1.1\r\nHost: x\r\nX-A: b\rContent-Length: 4\r\n\r\nabcd", status: 400},
		{desc: "non-ASCII in a field name", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-\xc3\x89ncoding: chunked\r\nContent-Length: 4\r\n\r\nabcd", status: 400},
		{desc: "whitespace before the first field", raw: "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd", status: 400},
		{desc: "absolute form naming another host than Host", raw: "GET http://admin.internal/ HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
		{desc: "absolute form with userinfo", raw: "GET http://u:p@x/ HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
		{desc: "absolute form without a host", raw: "GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
		{desc: "bare LF in a chunk size line", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\r\n0\r\n\r\n", status: 400},
		{desc: "whitespace before a chunk size", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 4\r\nabcd\r\n0\r\n\r\n", status: 400},
		{desc: "text after a chunk size", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4 x\r\nabcd\r\n0\r\n\r\n", status: 400},
		{desc: "bare CR in a chunk extension", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;a\rb\r\nabcd\r\n0\r\n\r\n", status: 400},
		{desc: "trailer that is no field", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\nGET /b HTTP/1.1\r\n\r\n", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			status, closed := rawExchange(t, addr, tc.raw)
			if status != tc.status || !closed {
				t.Fatalf("status %d closed %v, want %d and the connection closed", status, closed, tc.status)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 0 {
		t.Fatalf("refused requests reached the backend: %q", seen)
	}
}

// rawExchange writes raw and reads one response; closed reports whether
// the server closed the connection after it.
func rawExchange(t *testing.T, addr, raw string) (status int, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	return resp.StatusCode, err == io.EOF
}
