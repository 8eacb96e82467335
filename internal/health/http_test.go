package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
)

func healthMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "status: all good")
	})
	mux.HandleFunc("/sick", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "sick", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sick", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		// The needle lies past the 64 KiB the check reads.
		w.Write([]byte(strings.Repeat("x", maxBody)))
		fmt.Fprint(w, "needle")
	})
	mux.HandleFunc("/vhost", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "svc.example" {
			http.Error(w, "unknown host "+r.Host, http.StatusNotFound)
		}
	})
	mux.HandleFunc("/head-only", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			http.Error(w, "want HEAD", http.StatusMethodNotAllowed)
		}
	})
	return mux
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(healthMux())
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	tests := []struct {
		desc    string
		opts    HTTPOptions
		addr    string
		wantErr string // substring; empty when the check must pass
	}{
		{desc: "200 passes", opts: HTTPOptions{Path: "/ok"}},
		{desc: "503 fails with the status in the error", opts: HTTPOptions{Path: "/sick"},
			wantErr: "http check GET /sick: status 503, want 200-399"},
		{desc: "accepted 503 passes", opts: HTTPOptions{Path: "/sick", Expect: config.StatusRanges{{Lo: 503, Hi: 503}}}},
		{desc: "redirect is judged, not followed", opts: HTTPOptions{Path: "/moved"}},
		{desc: "redirect outside expect fails", opts: HTTPOptions{Path: "/moved", Expect: config.StatusRanges{{Lo: 200, Hi: 299}}},
			wantErr: "status 302, want 200-299"},
		{desc: "body substring passes", opts: HTTPOptions{Path: "/ok", ExpectBody: "all good"}},
		{desc: "body mismatch fails", opts: HTTPOptions{Path: "/ok", ExpectBody: "degraded"},
			wantErr: `body does not contain "degraded"`},
		{desc: "body beyond 64 KiB is not read", opts: HTTPOptions{Path: "/big", ExpectBody: "needle"},
			wantErr: "read 65536 bytes"},
		{desc: "host header is sent", opts: HTTPOptions{Path: "/vhost", Host: "svc.example"}},
		{desc: "default host is the address", opts: HTTPOptions{Path: "/vhost"}, wantErr: "status 404"},
		{desc: "method is sent", opts: HTTPOptions{Path: "/head-only", Method: http.MethodHead}},
		{desc: "closed port fails", opts: HTTPOptions{Path: "/ok"}, addr: closedAddr(t, "tcp"),
			wantErr: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			a := addr
			if tt.addr != "" {
				a = tt.addr
			}
			err := NewHTTP(tt.opts).Check(ctx, a)
			checkErr(t, err, tt.wantErr)
		})
	}
}

// checkErr fails t unless err matches want: nil when want is empty, else
// an error containing want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("check failed: %v", err)
	case want != "" && err == nil:
		t.Fatalf("check passed, want error containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("check error %q does not contain %q", err, want)
	}
}

func TestHTTPOpensAFreshConnectionPerCheck(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(healthMux())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	h := NewHTTP(HTTPOptions{Path: "/ok"})
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := h.Check(ctx, srv.Listener.Addr().String())
		cancel()
		if err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
	}
	if got := conns.Load(); got != 3 {
		t.Fatalf("server saw %d connections for 3 checks, want 3 (keep-alives must be off)", got)
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(healthMux())
	// The failing cases make the server log handshake errors; they are
	// expected here.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	tests := []struct {
		desc    string
		opts    HTTPOptions
		wantErr string
	}{
		{desc: "skip verify passes", opts: HTTPOptions{HTTPS: true, Path: "/ok", TLSSkipVerify: true}},
		{desc: "unknown authority fails", opts: HTTPOptions{HTTPS: true, Path: "/ok"}, wantErr: "certificate"},
		{desc: "plain http to a tls port fails", opts: HTTPOptions{Path: "/ok"}, wantErr: "status 400"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			checkErr(t, NewHTTP(tt.opts).Check(ctx, addr), tt.wantErr)
		})
	}
}

func TestHTTPTimeout(t *testing.T) {
	// A server that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = NewHTTP(HTTPOptions{}).Check(ctx, l.Addr().String())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("check of a silent server = %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("check took %v with a 200ms timeout", el)
	}
}
