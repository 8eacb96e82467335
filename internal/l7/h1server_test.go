package l7

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// The tests of this file drive strata's own HTTP/1.1 server (h1server.go,
// h1request.go, h1body.go, h1writer.go) over raw TCP and with net/http's
// client, checking what a user of nginx expects of a front end.

// h1Backend answers by path; it counts the requests it sees so that tests
// can check a refused request never reached it.
type h1Backend struct {
	*backend
	requests atomic.Int64
	slowIn   chan struct{} // a /slow request arrived
	slowOut  chan struct{} // closed to let /slow requests answer
}

// bigBody is a deterministic body of n bytes that no shifted copy of
// itself matches, so that a lost or repeated piece is seen.
func bigBody(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func startH1Backend(t *testing.T) *h1Backend {
	t.Helper()
	hb := &h1Backend{slowIn: make(chan struct{}, 8), slowOut: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-hb.slowOut:
		default:
			close(hb.slowOut)
		}
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(599)
			return
		}
		w.Header().Set("X-Got-Len", strconv.Itoa(len(body)))
		w.Header().Set("X-Got-Method", r.Method)
		w.Write(body)
	})
	mux.HandleFunc("/uri", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+" "+r.RequestURI)
	})
	mux.HandleFunc("/noread", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "not read")
	})
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "part1")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
		w.Header().Set("X-Checksum", "abc123")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		// Small pieces, each flushed: the proxy sees them one at a time.
		for _, s := range []string{"hello ", "streamed ", "world"} {
			io.WriteString(w, s)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/pieces", func(w http.ResponseWriter, r *http.Request) {
		// 8 KiB in flushed 1 KiB pieces: a body of unknown length, over
		// the 2 KiB a writer holds to learn it.
		b := bigBody(8 << 10)
		for i := 0; i < len(b); i += 1 << 10 {
			w.Write(b[i : i+1<<10])
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<20))
		w.Write(bigBody(1 << 20))
	})
	mux.HandleFunc("/head", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5000")
		w.Write(bigBody(5000))
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(code)
		io.WriteString(w, "must not be sent")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		hb.slowIn <- struct{}{}
		<-hb.slowOut
		io.WriteString(w, "slow done")
	})
	hb.backend = startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hb.requests.Add(1)
		mux.ServeHTTP(w, r)
	}))
	return hb
}

// startH1Proxy starts a proxy with one listener ln (its address and routes
// filled in) in front of a fresh h1Backend.
func startH1Proxy(t *testing.T, opts Options, ln config.Listener) (*Server, string, *h1Backend) {
	t.Helper()
	hb := startH1Backend(t)
	pool := newPool(t, "p", hb.addr)
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s := NewServer(opts)
	ln.Name, ln.Listen, ln.Routes = "test", "127.0.0.1:0", []config.Route{{Pool: "p"}}
	if err := s.Apply(&config.L7{Listeners: []config.Listener{ln}}, map[string]*upstream.Pool{"p": pool}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, s) })
	return s, s.Addrs()[0].String(), hb
}

// rawConn is a client connection written and read byte by byte.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.nc, s); err != nil {
		rc.t.Fatalf("writing request: %v", err)
	}
}

// rawResp is one response read whole.
type rawResp struct {
	*http.Response
	body []byte
}

// read reads one response to a request of method.
func (rc *rawConn) read(method string) rawResp {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("reading response body: %v", err)
	}
	return rawResp{resp, body}
}

// closed reports whether the server closed the connection, with nothing
// more sent, within a second.
func (rc *rawConn) closed() bool {
	rc.nc.SetReadDeadline(time.Now().Add(time.Second))
	_, err := rc.br.ReadByte()
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	return err == io.EOF || isReset(err)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestH1KeepAlive(t *testing.T) {
	_, addr, hb := startH1Proxy(t, Options{}, config.Listener{})

	t.Run("many requests on one connection", func(t *testing.T) {
		rc := dialRaw(t, addr)
		for i := range 30 {
			rc.send(fmt.Sprintf("GET /uri?i=%d HTTP/1.1\r\nHost: h%d\r\n\r\n", i, i))
			r := rc.read("GET")
			if want := fmt.Sprintf("h%d /uri?i=%d", i, i); r.StatusCode != 200 || string(r.body) != want || r.Close {
				t.Fatalf("request %d: %d %q close %v, want 200 %q kept open", i, r.StatusCode, r.body, r.Close, want)
			}
		}
	})

	t.Run("pipelined requests answered in order", func(t *testing.T) {
		rc := dialRaw(t, addr)
		var all strings.Builder
		for i := range 10 {
			fmt.Fprintf(&all, "GET /uri?i=%d HTTP/1.1\r\nHost: p\r\n\r\n", i)
			if i == 4 {
				all.WriteString("POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nfifth")
			}
		}
		all.WriteString("HEAD /head HTTP/1.1\r\nHost: p\r\n\r\nGET /uri?last HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
		rc.send(all.String()) // one write
		for i := range 10 {
			if r := rc.read("GET"); string(r.body) != fmt.Sprintf("p /uri?i=%d", i) {
				t.Fatalf("response %d: %q", i, r.body)
			}
			if i == 4 {
				if r := rc.read("POST"); string(r.body) != "fifth" {
					t.Fatalf("pipelined POST: %q", r.body)
				}
			}
		}
		if r := rc.read("HEAD"); r.ContentLength != 5000 || len(r.body) != 0 {
			t.Fatalf("pipelined HEAD: length %d body %d bytes", r.ContentLength, len(r.body))
		}
		if r := rc.read("GET"); string(r.body) != "p /uri?last" || !r.Close {
			t.Fatalf("last response %q close %v", r.body, r.Close)
		}
		if !rc.closed() {
			t.Fatal("connection open after Connection: close")
		}
	})

	t.Run("net/http client reuses its connection", func(t *testing.T) {
		before := hb.requests.Load()
		conns := 0
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				conns++
				return (&net.Dialer{}).DialContext(ctx, network, a)
			},
		}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		for i := range 20 {
			resp, err := c.Post("http://"+addr+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", i*100)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(body) != i*100 {
				t.Fatalf("request %d: body of %d bytes", i, len(body))
			}
		}
		if conns != 1 || hb.requests.Load()-before != 20 {
			t.Fatalf("%d connections for 20 requests (backend saw %d), want 1", conns, hb.requests.Load()-before)
		}
	})
}

func TestH1HTTP10(t *testing.T) {
	_, addr, _ := startH1Proxy(t, Options{}, config.Listener{})
	tests := []struct {
		desc, req  string
		body       []byte
		keep       bool // the connection stays open
		keepHeader bool // the response says Connection: keep-alive
	}{
		{desc: "closes by default", req: "GET /uri HTTP/1.0\r\nHost: a\r\n\r\n", body: []byte("a /uri")},
		{desc: "no Host is fine in 1.0", req: "GET /echo HTTP/1.0\r\n\r\n", body: []byte{}},
		{desc: "keep-alive asked for", req: "GET /uri HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n", body: []byte("a /uri"), keep: true, keepHeader: true},
		{desc: "keep-alive with a Content-Length body", req: "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc", body: []byte("abc"), keep: true, keepHeader: true},
		{desc: "unknown length ends with the close", req: "GET /pieces HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", body: bigBody(8 << 10)},
		{desc: "close wins over keep-alive", req: "GET /uri HTTP/1.0\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n", body: []byte("a /uri")},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.send(tc.req)
			r := rc.read("GET")
			if r.StatusCode != 200 || !bytes.Equal(r.body, tc.body) {
				t.Fatalf("status %d body %d bytes %.40q, want 200 and %d bytes", r.StatusCode, len(r.body), r.body, len(tc.body))
			}
			if r.Header.Get("Transfer-Encoding") != "" || len(r.TransferEncoding) != 0 {
				t.Fatalf("chunked response to an HTTP/1.0 client: %v", r.TransferEncoding)
			}
			if got := strings.EqualFold(r.Header.Get("Connection"), "keep-alive"); got != tc.keepHeader {
				t.Fatalf("Connection: %q, want keep-alive %v", r.Header.Get("Connection"), tc.keepHeader)
			}
			if tc.keep {
				rc.send("GET /uri HTTP/1.0\r\nHost: b\r\n\r\n")
				if r := rc.read("GET"); string(r.body) != "b /uri" {
					t.Fatalf("second request on a kept 1.0 connection: %q", r.body)
				}
			}
			if !rc.closed() {
				t.Fatal("connection still open")
			}
		})
	}
}

func TestH1ExpectContinue(t *testing.T) {
	_, addr, _ := startH1Proxy(t, Options{}, config.Listener{})

	t.Run("100 Continue before the body", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.send("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
		if r := rc.read("POST"); r.StatusCode != 100 {
			t.Fatalf("first response %d, want 100 before the body is sent", r.StatusCode)
		}
		rc.send("hello world")
		r := rc.read("POST")
		if r.StatusCode != 200 || string(r.body) != "hello world" {
			t.Fatalf("final response %d %q", r.StatusCode, r.body)
		}
		// The connection is still good.
		rc.send("GET /uri HTTP/1.1\r\nHost: b\r\n\r\n")
		if r := rc.read("GET"); string(r.body) != "b /uri" {
			t.Fatalf("next request: %q", r.body)
		}
	})

	t.Run("net/http client with ExpectContinueTimeout", func(t *testing.T) {
		tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("PUT", "http://"+addr+"/echo", bytes.NewReader(bigBody(100<<10)))
		req.Header.Set("Expect", "100-continue")
		start := time.Now()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(body, bigBody(100<<10)) {
			t.Fatalf("echoed %d bytes", len(body))
		}
		// Without the 100, the client would wait out its 5 s.
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("upload took %v: no 100 Continue", d)
		}
	})

	for _, tc := range []struct{ desc, expect string }{
		{desc: "unknown expectation", expect: "something-else"},
		{desc: "100-continue with a parameter", expect: "100-continue; x=1"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.send("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: " + tc.expect + "\r\nContent-Length: 2\r\n\r\nhi")
			if r := rc.read("POST"); r.StatusCode != 417 || !rc.closed() {
				t.Fatalf("status %d, want 417 and the connection closed", r.StatusCode)
			}
		})
	}
}

// TestH1Refused sends requests the server must refuse before the handler:
// each gets its status and the connection closes; none reaches the backend.
func TestH1Refused(t *testing.T) {
	_, addr, hb := startH1Proxy(t, Options{}, config.Listener{MaxHeaderBytes: 4096})
	tests := []struct {
		desc, raw string
		status    int
	}{
		{desc: "missing Host on 1.1", raw: "GET / HTTP/1.1\r\n\r\n", status: 400},
		{desc: "two Host fields", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400},
		{desc: "two Host fields, same value", raw: "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", status: 400},
		{desc: "header over max_header_bytes", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("y", 5000) + "\r\n\r\n", status: 431},
		{desc: "many small fields over max_header_bytes", raw: "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", 600) + "\r\n", status: 431},
		{desc: "request line over max_header_bytes", raw: "GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\nHost: a\r\n\r\n", status: 431},
		{desc: "HTTP/2.0 request line", raw: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505},
		{desc: "HTTP/1.2 request line", raw: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", status: 505},
		{desc: "HTTP/0.9-style request line", raw: "GET /\r\n\r\n", status: 400},
		{desc: "lower-case protocol", raw: "GET / http/1.1\r\nHost: a\r\n\r\n", status: 400},
		{desc: "two spaces after the method", raw: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{desc: "space in the target", raw: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{desc: "no target", raw: "GET HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{desc: "method with a separator", raw: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{desc: "CONNECT (no forward proxying)", raw: "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", status: 501},
		{desc: "absolute form of another scheme", raw: "GET foo:/admin HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{desc: "absolute form, opaque", raw: "GET http:admin HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{desc: "garbage", raw: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", status: 400},
		{desc: "bare CR in a value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", status: 400},
		{desc: "space in Host", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400},
		{desc: "slash in Host", raw: "GET / HTTP/1.1\r\nHost: a/../b\r\n\r\n", status: 400},
		{desc: "quote in Host", raw: "GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", status: 400},
		{desc: "NUL in a value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", status: 400},
		{desc: "DEL in a value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n", status: 400},
		{desc: "NUL in a name", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-\x00A: b\r\n\r\n", status: 400},
		{desc: "obsolete line folding", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", status: 400},
		{desc: "header line without a colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", status: 400},
		{desc: "empty header name", raw: "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", status: 400},
		{desc: "control byte in the target", raw: "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{desc: "Transfer-Encoding in 1.0", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
		{desc: "negative Content-Length", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status: 400},
		{desc: "Content-Length list of equal values", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", status: 400},
		{desc: "Content-Length and Transfer-Encoding", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: 400},
		{desc: "mixed line ends", raw: "GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", status: 400},
		{desc: "absolute form and another Host", raw: "GET http://b.example/uri HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{desc: "Content-Length too large", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.send(tc.raw)
			r := rc.read("GET")
			if r.StatusCode != tc.status {
				t.Fatalf("status %d (%q), want %d", r.StatusCode, r.body, tc.status)
			}
			if !r.Close || !rc.closed() {
				t.Fatalf("connection not closed after %d (Connection: close %v)", r.StatusCode, r.Close)
			}
		})
	}
	if n := hb.requests.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the backend", n)
	}

	// A request that fails after good ones on the same connection is
	// answered after them, in order.
	rc := dialRaw(t, addr)
	rc.send("GET /uri HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n")
	if r := rc.read("GET"); r.StatusCode != 200 {
		t.Fatalf("good request before a bad one: %d", r.StatusCode)
	}
	if r := rc.read("GET"); r.StatusCode != 400 || !rc.closed() {
		t.Fatalf("bad request after a good one: %d", r.StatusCode)
	}
}

// TestH1Accepted sends unusual but valid requests that must pass.
func TestH1Accepted(t *testing.T) {
	_, addr, _ := startH1Proxy(t, Options{}, config.Listener{MaxHeaderBytes: 4096})
	tests := []struct {
		desc, raw, body string
	}{
		{desc: "empty lines before the request line", raw: "\r\n\r\nGET /uri HTTP/1.1\r\nHost: a\r\n\r\n", body: "a /uri"},
		{desc: "bare LF line ends", raw: "GET /uri HTTP/1.1\nHost: a\n\n", body: "a /uri"},
		{desc: "absolute form and the same Host", raw: "GET http://b.example/uri?q HTTP/1.1\r\nHost: B.example\r\n\r\n", body: "b.example /uri?q"},
		{desc: "absolute form on 1.0 without Host", raw: "GET http://b.example/uri HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", body: "b.example /uri"},
		{desc: "lower-case host field name, tabs around the value", raw: "GET /uri HTTP/1.1\r\nhOsT:\t a \t\r\n\r\n", body: "a /uri"},
		{desc: "escaped target", raw: "GET /uri?x=%20y HTTP/1.1\r\nHost: a\r\n\r\n", body: "a /uri?x=%20y"},
		{desc: "header just under max_header_bytes", raw: "GET /uri HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("y", 3900) + "\r\n\r\n", body: "a /uri"},
		{desc: "Content-Length with leading zeros", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\nabc", body: "abc"},
		{desc: "upper-case chunked", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n", body: "abc"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.send(tc.raw)
			r := rc.read("GET")
			if r.StatusCode != 200 || string(r.body) != tc.body {
				t.Fatalf("status %d body %q, want 200 %q", r.StatusCode, r.body, tc.body)
			}
			rc.send("GET /uri HTTP/1.1\r\nHost: next\r\n\r\n")
			if r := rc.read("GET"); string(r.body) != "next /uri" {
				t.Fatalf("next request: %d %q", r.StatusCode, r.body)
			}
		})
	}
}

func TestH1RequestBodies(t *testing.T) {
	_, addr, _ := startH1Proxy(t, Options{}, config.Listener{})
	big := bigBody(300 << 10)
	tests := []struct {
		desc, head string
		body       string // as sent, framing included
		want       []byte // as the backend must see it
	}{
		{desc: "Content-Length", head: "Content-Length: 11\r\n", body: "hello world", want: []byte("hello world")},
		{desc: "large Content-Length", head: fmt.Sprintf("Content-Length: %d\r\n", len(big)), body: string(big), want: big},
		{desc: "chunked, several chunks with extensions and trailers", head: "Transfer-Encoding: chunked\r\n",
			body: "5;name=value\r\nhello\r\n1 ; a ; b=\"c\"\r\n \r\nA\r\n0123456789\r\n0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
			want: []byte("hello 0123456789")},
		{desc: "chunked, upper-case hex and leading zeros", head: "Transfer-Encoding: chunked\r\n", body: "00B\r\nhello world\r\n000\r\n\r\n", want: []byte("hello world")},
		{desc: "chunked, one large chunk", head: "Transfer-Encoding: chunked\r\n", body: fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big), want: big},
		{desc: "Content-Length 0", head: "Content-Length: 0\r\n", body: "", want: []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.send("POST /echo HTTP/1.1\r\nHost: a\r\n" + tc.head + "\r\n" + tc.body)
			r := rc.read("POST")
			if r.StatusCode != 200 || !bytes.Equal(r.body, tc.want) {
				t.Fatalf("status %d, backend got %s bytes %.40q, want %d bytes %.40q", r.StatusCode, r.Header.Get("X-Got-Len"), r.body, len(tc.want), tc.want)
			}
			rc.send("GET /uri HTTP/1.1\r\nHost: next\r\n\r\n")
			if r := rc.read("GET"); string(r.body) != "next /uri" {
				t.Fatalf("next request: %d %q", r.StatusCode, r.body)
			}
		})
	}

	t.Run("net/http client, chunked upload of unknown length", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < len(big); i += 7000 {
				pw.Write(big[i:min(i+7000, len(big))])
			}
			pw.Close()
		}()
		resp, err := http.Post("http://"+addr+"/echo", "application/octet-stream", pr)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(body, big) {
			t.Fatalf("echoed %d bytes, want %d", len(body), len(big))
		}
	})

	t.Run("client stops mid-body", func(t *testing.T) {
		for _, head := range []string{"Content-Length: 1000\r\n\r\n0123456789", "Transfer-Encoding: chunked\r\n\r\n3e8\r\n0123456789"} {
			rc := dialRaw(t, addr)
			rc.send("POST /echo HTTP/1.1\r\nHost: a\r\n" + head)
			rc.nc.(*net.TCPConn).CloseWrite()
			// Whatever the answer (502 or none), the connection ends.
			rc.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.Copy(io.Discard, rc.br); err != nil && !isReset(err) {
				t.Fatalf("%q: connection not closed after the client stopped: %v", head, err)
			}
		}
		// The server still serves.
		rc := dialRaw(t, addr)
		rc.send("GET /uri HTTP/1.1\r\nHost: a\r\n\r\n")
		if r := rc.read("GET"); r.StatusCode != 200 {
			t.Fatalf("after the broken uploads: %d", r.StatusCode)
		}
	})
}

func TestH1Responses(t *testing.T) {
	_, addr, _ := startH1Proxy(t, Options{}, config.Listener{})

	t.Run("chunked response with trailers", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.send("GET /trailers HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n")
		r := rc.read("GET")
		if string(r.body) != "part1part2" || r.Trailer.Get("X-Checksum") != "abc123" {
			t.Fatalf("body %q trailer %v, want part1part2 and X-Checksum: abc123", r.body, r.Trailer)
		}
		if len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" {
			t.Fatalf("transfer encoding %v, want chunked", r.TransferEncoding)
		}
	})

	t.Run("net/http client sees the trailers", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/trailers")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "part1part2" || resp.Trailer.Get("X-Checksum") != "abc123" {
			t.Fatalf("body %q trailer %v", body, resp.Trailer)
		}
	})

	t.Run("streamed small pieces arrive whole", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.send("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
		if r := rc.read("GET"); string(r.body) != "hello streamed world" {
			t.Fatalf("body %q, want %q", r.body, "hello streamed world")
		}
	})

	t.Run("unknown length over 2 KiB is chunked", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.send("GET /pieces HTTP/1.1\r\nHost: a\r\n\r\n")
		r := rc.read("GET")
		if !bytes.Equal(r.body, bigBody(8<<10)) || len(r.TransferEncoding) == 0 {
			t.Fatalf("body %d bytes (te %v), want 8192 chunked", len(r.body), r.TransferEncoding)
		}
	})

	t.Run("HEAD keeps Content-Length and sends no body", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.send("HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n")
		r := rc.read("HEAD")
		if r.StatusCode != 200 || r.Header.Get("Content-Length") != "5000" {
			t.Fatalf("HEAD: %d Content-Length %q", r.StatusCode, r.Header.Get("Content-Length"))
		}
		// Were body bytes sent, they would be read as the next response.
		rc.send("GET /uri HTTP/1.1\r\nHost: next\r\n\r\n")
		if r := rc.read("GET"); string(r.body) != "next /uri" {
			t.Fatalf("after HEAD: %d %q", r.StatusCode, r.body)
		}
	})

	for _, code := range []int{204, 304} {
		t.Run(fmt.Sprintf("%d carries no body", code), func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.send(fmt.Sprintf("GET /status/%d HTTP/1.1\r\nHost: a\r\n\r\n", code))
			r := rc.read("GET")
			if r.StatusCode != code || r.Header.Get("Content-Length") != "" || len(r.TransferEncoding) != 0 {
				t.Fatalf("%d, Content-Length %q, te %v", r.StatusCode, r.Header.Get("Content-Length"), r.TransferEncoding)
			}
			if code == 304 && r.Header.Get("ETag") != `"v1"` {
				t.Fatalf("304 lost its ETag: %v", r.Header)
			}
			rc.send("GET /uri HTTP/1.1\r\nHost: next\r\n\r\n")
			if r := rc.read("GET"); string(r.body) != "next /uri" {
				t.Fatalf("after %d: %d %q", code, r.StatusCode, r.body)
			}
		})
	}

	t.Run("1 MiB body arrives whole", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/big")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(body, bigBody(1<<20)) || resp.ContentLength != 1<<20 {
			t.Fatalf("%d bytes (Content-Length %d), want 1 MiB", len(body), resp.ContentLength)
		}
	})

	t.Run("Date is sent once", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.send("GET /uri HTTP/1.1\r\nHost: a\r\n\r\n")
		r := rc.read("GET")
		if d := r.Header.Values("Date"); len(d) != 1 {
			t.Fatalf("Date fields %q, want one", d)
		} else if _, err := http.ParseTime(d[0]); err != nil {
			t.Fatalf("Date %q: %v", d[0], err)
		}
	})
}

// TestH1Shutdown checks that Shutdown closes idle keep-alive connections at
// once and lets an in-flight request finish.
func TestH1Shutdown(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, addr, hb := startH1Proxy(t, Options{Registry: reg}, config.Listener{})
	active := func() float64 {
		return metricValue(t, reg, "strata_l7_connections_active", map[string]string{"listener": "test"})
	}

	idle := dialRaw(t, addr)
	idle.send("GET /uri HTTP/1.1\r\nHost: a\r\n\r\n")
	if r := idle.read("GET"); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	busy := dialRaw(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	select {
	case <-hb.slowIn:
	case <-time.After(5 * time.Second):
		t.Fatal("slow request did not reach the backend")
	}
	eventually(t, 2*time.Second, "two active connections", func() bool { return active() == 2 })

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	if !idle.closed() {
		t.Fatal("idle keep-alive connection still open a second after Shutdown began")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}
	close(hb.slowOut)
	r := busy.read("GET")
	if r.StatusCode != 200 || string(r.body) != "slow done" {
		t.Fatalf("in-flight request: %d %q", r.StatusCode, r.body)
	}
	if !r.Close || !busy.closed() {
		t.Fatal("in-flight request's connection kept open during shutdown")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Shutdown took %v", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not return after the last request finished")
	}
	if n := active(); n != 0 {
		t.Fatalf("strata_l7_connections_active %v after shutdown, want 0", n)
	}
}

// TestH1ConnsGauge checks that the active connections gauge follows
// connections closed by the client, by the server, and refused.
func TestH1ConnsGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, addr, _ := startH1Proxy(t, Options{Registry: reg}, config.Listener{})
	active := func() float64 {
		return metricValue(t, reg, "strata_l7_connections_active", map[string]string{"listener": "test"})
	}
	var rcs []*rawConn
	for _, raw := range []string{
		"GET /uri HTTP/1.1\r\nHost: a\r\n\r\n",                      // kept open
		"GET /uri HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", // closed by the server
		"GET / HTTP/1.1\r\n\r\n",                                    // refused
		"GET /uri HTTP/1.0\r\n\r\n",                                 // 1.0
	} {
		rc := dialRaw(t, addr)
		rc.send(raw)
		rc.read("GET")
		rcs = append(rcs, rc)
	}
	silent := dialRaw(t, addr) // never sends anything
	eventually(t, 2*time.Second, "gauge at 2 (one kept, one silent)", func() bool { return active() == 2 })
	for _, rc := range rcs {
		rc.nc.Close()
	}
	silent.nc.Close()
	eventually(t, 2*time.Second, "gauge back to 0", func() bool { return active() == 0 })
}

// startH1 serves h with an h1Server of its own on 127.0.0.1:0, to check
// the server's side of what the proxy's handler never does.
func startH1(t *testing.T, maxHeader int, h http.Handler) string {
	t.Helper()
	return startH1Server(t, &h1Server{handler: h, ctx: context.Background(), maxHeader: maxHeader, log: quietLogger()})
}

// startH1Server serves s on 127.0.0.1:0 until the test ends.
func startH1Server(t *testing.T, s *h1Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("h1Server.Shutdown: %v", err)
			s.Close()
		}
		<-done
	})
	return ln.Addr().String()
}

// TestH1Writer checks the response writer with handlers that do what
// net/http lets a handler do.
func TestH1Writer(t *testing.T) {
	flush := func(w http.ResponseWriter) { w.(http.Flusher).Flush() }
	tests := []struct {
		desc    string
		h       func(w http.ResponseWriter, r *http.Request)
		interim int // a 1xx response that comes first
		status  int
		body    string
		chunked bool
		trailer http.Header
	}{
		{desc: "small body gets a Content-Length", h: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }, status: 200, body: "hello"},
		{desc: "write, flush, write", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello ")
			flush(w)
			io.WriteString(w, "world")
		}, status: 200, body: "hello world", chunked: true},
		{desc: "held writes past 2 KiB", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.Repeat("a", 1500))
			io.WriteString(w, strings.Repeat("b", 1500))
		}, status: 200, body: strings.Repeat("a", 1500) + strings.Repeat("b", 1500), chunked: true},
		{desc: "flush before any write", h: func(w http.ResponseWriter, r *http.Request) {
			flush(w)
			io.WriteString(w, "late")
		}, status: 200, body: "late", chunked: true},
		{desc: "declared length", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "4000")
			io.WriteString(w, strings.Repeat("a", 1000))
			flush(w)
			io.WriteString(w, strings.Repeat("b", 3000))
		}, status: 200, body: strings.Repeat("a", 1000) + strings.Repeat("b", 3000)},
		{desc: "invalid Content-Length from the handler is dropped", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "abc")
			io.WriteString(w, "hello")
		}, status: 200, body: "hello"},
		{desc: "trailer set with TrailerPrefix", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "x")
			w.Header().Set(http.TrailerPrefix+"X-Sum", "7")
		}, status: 200, body: "x", chunked: true, trailer: http.Header{"X-Sum": {"7"}}},
		{desc: "103 Early Hints then 200", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(103)
			io.WriteString(w, "after hints")
		}, interim: 103, status: 200, body: "after hints"},
		{desc: "Content-Length repeated", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Length"] = []string{"3000", "3000"}
			io.WriteString(w, strings.Repeat("a", 3000))
		}, status: 200, body: strings.Repeat("a", 3000)},
		{desc: "Content-Length as a list", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5, 5")
			io.WriteString(w, "hello")
		}, status: 200, body: "hello"},
		{desc: "conflicting Content-Length values are dropped", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Length"] = []string{"3000", "2"}
			io.WriteString(w, strings.Repeat("a", 3000))
		}, status: 200, body: strings.Repeat("a", 3000), chunked: true},
		{desc: "value with a line end is made one line", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Split", "a\r\nX-Injected: 1")
			w.WriteHeader(201)
		}, status: 201, body: ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			addr := startH1(t, 8<<10, http.HandlerFunc(tc.h))
			rc := dialRaw(t, addr)
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if tc.interim != 0 {
				if r := rc.read("GET"); r.StatusCode != tc.interim || r.Header.Get("Link") == "" {
					t.Fatalf("interim response %d %v, want %d with Link", r.StatusCode, r.Header, tc.interim)
				}
			}
			r := rc.read("GET")
			if r.StatusCode != tc.status || string(r.body) != tc.body {
				t.Fatalf("%d %d bytes %.60q, want %d %d bytes %.60q", r.StatusCode, len(r.body), r.body, tc.status, len(tc.body), tc.body)
			}
			if got := len(r.TransferEncoding) > 0; got != tc.chunked {
				t.Fatalf("chunked %v, want %v", got, tc.chunked)
			}
			if r.Header.Get("X-Injected") != "" {
				t.Fatal("a header value split the head")
			}
			for k, v := range tc.trailer {
				if got := r.Trailer.Values(k); fmt.Sprint(got) != fmt.Sprint(v) {
					t.Fatalf("trailer %s: %q, want %q", k, got, v)
				}
			}
			if cl := r.Header.Values("Content-Length"); len(cl) > 1 || len(cl) == 1 && (tc.chunked || cl[0] != strconv.Itoa(len(tc.body))) {
				t.Fatalf("Content-Length %q (chunked %v) for a body of %d bytes", cl, tc.chunked, len(tc.body))
			}
			// The connection is positioned at the next response.
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if tc.interim != 0 {
				rc.read("GET")
			}
			if r := rc.read("GET"); r.StatusCode != tc.status || string(r.body) != tc.body {
				t.Fatalf("second response %d %.60q", r.StatusCode, r.body)
			}
		})
	}
}

// TestH1UnreadBody checks what the server does with a body its handler
// leaves unread: read and dropped up to 256 KiB, keeping the connection;
// past that, the connection closes after the response.
func TestH1UnreadBody(t *testing.T) {
	var got atomic.Int64
	addr := startH1(t, 8<<10, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			b, _ := io.ReadAll(r.Body)
			got.Store(int64(len(b)))
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	small := strings.Repeat("s", 10<<10)
	large := strings.Repeat("l", 300<<10)
	tests := []struct {
		desc, req string
		keep      bool
	}{
		{desc: "small Content-Length body", req: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(small)) + "\r\n\r\n" + small, keep: true},
		{desc: "small chunked body", req: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2800\r\n" + small + "\r\n0\r\nX-T: 1\r\n\r\n", keep: true},
		{desc: "large Content-Length body", req: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(large)) + "\r\n\r\n" + large},
		{desc: "waiting for 100 Continue", req: "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"},
		{desc: "malformed chunk after the handler returned", req: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			rc := dialRaw(t, addr)
			go io.WriteString(rc.nc, tc.req) // the server may answer before it reads all
			r := rc.read("POST")
			if r.StatusCode != 200 || string(r.body) != "ok /x" {
				t.Fatalf("%d %q", r.StatusCode, r.body)
			}
			if bytes.Contains(r.body, []byte("100 Continue")) || r.StatusCode == 100 {
				t.Fatal("100 Continue sent for a body the handler did not read")
			}
			if !tc.keep {
				if !r.Close && !rc.closed() {
					t.Fatal("connection kept after a body that was not drained")
				}
				return
			}
			rc.send("POST /read HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
			if r := rc.read("POST"); string(r.body) != "ok /read" || got.Load() != 3 {
				t.Fatalf("next request %q, handler read %d bytes", r.body, got.Load())
			}
		})
	}
}

// TestH1BackendFraming relays responses whose framing a backend may send
// and RFC 9110 §8.6 lets a recipient accept: the client must get one
// framing, never two.
func TestH1BackendFraming(t *testing.T) {
	body := strings.Repeat("z", 3000)
	tests := []struct {
		desc, head string
	}{
		{desc: "Content-Length repeated", head: "Content-Length: 3000\r\nContent-Length: 3000\r\n"},
		{desc: "Content-Length as a list", head: "Content-Length: 3000, 3000\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					nc, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer nc.Close()
						br := bufio.NewReader(nc)
						for {
							req, err := http.ReadRequest(br)
							if err != nil {
								return
							}
							io.Copy(io.Discard, req.Body)
							io.WriteString(nc, "HTTP/1.1 200 OK\r\n"+tc.head+"\r\n"+body)
						}
					}()
				}
			}()
			pool := newPool(t, "p", ln.Addr().String())
			_, url := startProxy(t, Options{}, []config.Route{{Pool: "p"}}, map[string]*upstream.Pool{"p": pool})
			rc := dialRaw(t, strings.TrimPrefix(url, "http://"))
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			r := rc.read("GET")
			if string(r.body) != body {
				t.Fatalf("body of %d bytes, want %d", len(r.body), len(body))
			}
			if cl := r.Header.Values("Content-Length"); len(r.TransferEncoding) > 0 || len(cl) != 1 || cl[0] != "3000" {
				t.Fatalf("Content-Length %q, Transfer-Encoding %q: want one Content-Length: 3000", cl, r.TransferEncoding)
			}
		})
	}
}

// TestH1StalledBody checks that a client that stops sending in the middle
// of its body, without closing, is not waited for without bound: nginx
// gives up after client_body_timeout, and so does strata, with the
// listener's client_body_timeout made short here.
func TestH1StalledBody(t *testing.T) {
	short := config.Duration(300 * time.Millisecond)
	_, addr, _ := startH1Proxy(t, Options{}, config.Listener{ClientBodyTimeout: short})
	for _, head := range []string{"Content-Length: 1000\r\n\r\n0123456789", "Transfer-Encoding: chunked\r\n\r\n3e8\r\n0123456789"} {
		rc := dialRaw(t, addr)
		rc.send("POST /echo HTTP/1.1\r\nHost: a\r\n" + head)
		rc.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := io.Copy(io.Discard, rc.br)
		if err != nil && !isReset(err) {
			t.Fatalf("%q: connection still open 3 s after the client stalled, with a 300 ms body timeout: %v", head, err)
		}
	}

	// A handler that answers without reading: the rest of the body is read
	// to keep the connection, but not waited for without bound either.
	to := clientTimeoutsOf(&config.Listener{ClientBodyTimeout: short})
	addr = startH1Server(t, &h1Server{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "unread")
	}), ctx: context.Background(), maxHeader: 8 << 10, log: quietLogger(), timeouts: func() *clientTimeouts { return &to }})
	rc := dialRaw(t, addr)
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789")
	if r := rc.read("POST"); string(r.body) != "unread" {
		t.Fatalf("response %q", r.body)
	}
	rc.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.Copy(io.Discard, rc.br); err != nil && !isReset(err) {
		t.Fatalf("connection still open 3 s after the client stalled in an unread body: %v", err)
	}
}

// TestH1ShutdownBeforeServe: a listener removed by a reload right after it
// was opened may be shut down before its Serve goroutine runs; Serve must
// then close the socket rather than leave the kernel accepting for nobody.
func TestH1ShutdownBeforeServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &h1Server{handler: http.NotFoundHandler(), ctx: context.Background(), maxHeader: 4096, log: quietLogger()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != http.ErrServerClosed {
		t.Fatalf("Serve after Shutdown = %v, want http.ErrServerClosed", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after Serve returned")
	}
}

// TestH1StalledReader: a client that asks for a large response and stops
// reading it, without closing, is given up on after the listener's
// send_timeout (nginx's name), made short here, so it does not hold the
// handler and a backend connection for good.
func TestH1StalledReader(t *testing.T) {
	done := make(chan error, 1)
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(256<<20))
		chunk := make([]byte, 1<<20)
		var err error
		for i := 0; i < 256 && err == nil; i++ {
			_, err = w.Write(chunk)
		}
		done <- err
	}))
	s := NewServer(Options{Logger: quietLogger()})
	ln := config.Listener{Name: "test", Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "p"}}, SendTimeout: config.Duration(300 * time.Millisecond)}
	if err := s.Apply(&config.L7{Listeners: []config.Listener{ln}}, map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, s) })
	rc := dialRaw(t, s.Addrs()[0].String())
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n") // and never read
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the backend wrote 256 MiB to a client that read none of it")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backend is still writing 10 s after the client stopped reading, with a 300 ms send timeout")
	}
}

// TestH1ParkedConnShutdown: a connection parked idle (its buffers and
// request state given back, waiting in a goroutine of its own) is closed
// by a graceful shutdown at once, as a busy-idle one is, and counted
// closed.
func TestH1ParkedConnShutdown(t *testing.T) {
	shortIdleRelease(t)
	reg := prometheus.NewRegistry()
	s, addr, _ := startH1Proxy(t, Options{Registry: reg}, config.Listener{})
	srv := listenerServer(s)
	rc := dialRaw(t, addr)
	rc.send("GET /uri HTTP/1.1\r\nHost: a\r\n\r\n")
	if r := rc.read("GET"); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	eventually(t, 5*time.Second, "the idle connection to park", func() bool {
		return srv.idleReleases.Load() >= 1
	})
	start := time.Now()
	shutdown(t, s)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v with one parked connection", d)
	}
	if !rc.closed() {
		t.Error("the parked connection is still open after shutdown")
	}
	if v := metricValue(t, reg, "strata_l7_connections_active", map[string]string{"listener": "test"}); v != 0 {
		t.Errorf("strata_l7_connections_active = %v after shutdown, want 0", v)
	}
}

// TestH1IdleReleasesBuffers: a keep-alive connection idle past
// idleRelease (short here) gives its buffers back and waits on the
// socket; the client's next request, a pipelined pair, and its close are
// all still served as on a busy connection.
func TestH1IdleReleasesBuffers(t *testing.T) {
	shortIdleRelease(t)
	reg := prometheus.NewRegistry()
	s, addr, _ := startH1Proxy(t, Options{Registry: reg}, config.Listener{})
	srv := listenerServer(s)
	rc := dialRaw(t, addr)
	for i := range 3 {
		rc.send("GET /uri?n=" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: a\r\n\r\n")
		if r := rc.read("GET"); r.StatusCode != 200 || !strings.Contains(string(r.body), "n="+strconv.Itoa(i)) {
			t.Fatalf("request %d after an idle spell: %d %q", i, r.StatusCode, r.body)
		}
		// The client idles until the connection has given its buffers
		// back, once more than before.
		eventually(t, 5*time.Second, "the idle connection to give its buffers back", func() bool {
			return srv.idleReleases.Load() >= int64(i+1)
		})
	}
	rc.send("GET /uri?n=a HTTP/1.1\r\nHost: a\r\n\r\nGET /uri?n=b HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, n := range []string{"a", "b"} {
		if r := rc.read("GET"); r.StatusCode != 200 || !strings.Contains(string(r.body), "n="+n) {
			t.Fatalf("pipelined request %s after an idle spell: %d %q", n, r.StatusCode, r.body)
		}
	}
	eventually(t, 5*time.Second, "the buffers given back a fourth time, after the pipelined pair", func() bool {
		return srv.idleReleases.Load() >= 4
	})
	rc.nc.Close()
	eventually(t, 5*time.Second, "the server to close its side", func() bool {
		return metricValue(t, reg, "strata_l7_connections_active", map[string]string{"listener": "test"}) == 0
	})
}
