package l7

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// rawBackend is an allocation-free HTTP/1.1 backend: it answers every
// request head with the same response, so that a benchmark's allocs/op
// are the proxy's alone.
func rawBackend(tb testing.TB, response string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	resp := []byte(response)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// Read one request head: lines until an empty one.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

const benchResponse = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 25 Nov 2026 12:00:00 GMT\r\n" +
	"Content-Type: text/plain\r\nContent-Length: 19\r\nConnection: keep-alive\r\n\r\nhello from backend\n"

// benchClient sends keep-alive GETs on one connection and checks bodies.
type benchClient struct {
	c    net.Conn
	br   *bufio.Reader
	head responseHead
	req  []byte
	body []byte
}

func newBenchClient(tb testing.TB, addr string) *benchClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &benchClient{c: c, br: bufio.NewReader(c),
		req:  []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: wrk\r\n\r\n"),
		body: make([]byte, 64)}
}

func (bc *benchClient) get() error {
	if _, err := bc.c.Write(bc.req); err != nil {
		return err
	}
	if _, err := readResponseHead(bc.br, &bc.head); err != nil {
		return err
	}
	if bc.head.status != 200 || bc.head.contentLength != 19 {
		return io.ErrUnexpectedEOF
	}
	if _, err := io.ReadFull(bc.br, bc.body[:19]); err != nil {
		return err
	}
	if !bytes.Equal(bc.body[:19], []byte("hello from backend\n")) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func benchServer(tb testing.TB) string {
	pool := newPool(tb, "bench", rawBackend(tb, benchResponse), rawBackend(tb, benchResponse))
	s := NewServer(Options{Logger: quietLogger()})
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "bench"}}}}}
	if err := s.Apply(cfg, map[string]*upstream.Pool{"bench": pool}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, s) })
	return s.Addrs()[0].String()
}

// BenchmarkProxy measures one proxied keep-alive GET end to end: client,
// proxy and backend on loopback, as wrk drives it.
func BenchmarkProxy(b *testing.B) {
	addr := benchServer(b)
	bc := newBenchClient(b, addr)
	for range 100 { // warm the pools
		if err := bc.get(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		if err := bc.get(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// processCPU is the CPU time (user and system) the test process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op, the process's CPU time per operation since
// start: client, proxy and backend together. On a shared machine the wall
// time of an operation mostly measures the other jobs; the CPU it costs
// hardly moves with them.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkProxyParallel is BenchmarkProxy with a connection per worker.
func BenchmarkProxyParallel(b *testing.B) {
	addr := benchServer(b)
	b.ReportAllocs()
	b.SetParallelism(8)
	cpu := processCPU()
	defer reportCPU(b, cpu)
	b.RunParallel(func(pb *testing.PB) {
		bc := newBenchClient(b, addr)
		for pb.Next() {
			if err := bc.get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkProxyClose measures a connection per request (Connection:
// close): the accept, the connection's setup and teardown on top of one
// proxied GET.
func BenchmarkProxyClose(b *testing.B) {
	addr := benchServer(b)
	req := []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: wrk\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 4096)
	get := func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write(req); err != nil {
			return err
		}
		// The response ends where the proxy closes the connection.
		n := 0
		for {
			m, err := c.Read(buf[n:])
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if !bytes.HasSuffix(buf[:n], []byte("hello from backend\n")) {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
	for range 100 {
		if err := get(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		if err := get(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}
