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

// TestSmugglingRefused sends ambiguous framing on raw TCP. The listener
// refuses it (h1request.go), and strata frames every request it forwards
// anew (its own Content-Length or chunked encoding), so no client framing
// reaches a backend.
func TestSmugglingRefused(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
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
		{desc: "coding other than chunked", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 501},
		{desc: "two Transfer-Encoding fields", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 501},
		{desc: "unknown coding", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", status: 501},
		{desc: "bare LF in a chunk size line", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\r\n0\r\n\r\n", status: 400},
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
	n := len(seen)
	mu.Unlock()
	if n != 0 {
		t.Fatalf("refused requests reached the backend: %q", seen)
	}

	// Content-Length and chunked together: the chunked framing wins (RFC
	// 9112 §6.3), and the connection is closed after the response (§6.1),
	// so what follows the last chunk never becomes a request of its own.
	status, closed := rawExchange(t, addr, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	if status != 200 || !closed {
		t.Fatalf("Content-Length with chunked: status %d closed %v, want 200 and the connection closed", status, closed)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "POST /a " {
		t.Fatalf("backend saw %q, want only a POST with an empty body", seen)
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
