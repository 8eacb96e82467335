package admin

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

func TestNewRejects(t *testing.T) {
	src := &fakeSource{}
	tests := []struct {
		desc string
		opts Options
		want string
	}{
		{desc: "no source", opts: Options{Listen: "127.0.0.1:0"}, want: "admin: no source of pools"},
		{desc: "no port", opts: Options{Listen: "127.0.0.1", Source: src}, want: `admin: parsing listen address "127.0.0.1"`},
		{desc: "empty listen", opts: Options{Source: src}, want: `admin: parsing listen address ""`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestStartAndShutdown(t *testing.T) {
	src := &fakeSource{pools: []*upstream.Pool{upstream.NewPool("p", upstream.Options{})}}

	t.Run("address in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		s, err := New(Options{Listen: ln.Addr().String(), Source: src, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err == nil || !strings.Contains(err.Error(), "admin: listening on "+ln.Addr().String()) {
			t.Fatalf("Start on a taken port = %v", err)
		}
		if s.Addr() != nil {
			t.Errorf("Addr after a failed Start = %v, want nil", s.Addr())
		}
	})

	t.Run("twice", func(t *testing.T) {
		// The port is bound again below, after Shutdown, so it comes from
		// below the ephemeral range, where no other socket is handed it in
		// between.
		s, err := New(Options{Listen: testnet.FreeAddr(t), Source: src, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if s.Addr() != nil {
			t.Errorf("Addr before Start = %v, want nil", s.Addr())
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err == nil || !strings.Contains(err.Error(), "already started") {
			t.Errorf("second Start = %v, want already started", err)
		}
		addr := s.Addr().String()
		if err := s.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err == nil || !strings.Contains(err.Error(), "shut down") {
			t.Errorf("Start after Shutdown = %v, want an error", err)
		}
		// The port is free again: the listener really closed.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("port still taken after Shutdown: %v", err)
		}
		ln.Close()
	})

	t.Run("shutdown before start", func(t *testing.T) {
		s, err := New(Options{Listen: "127.0.0.1:0", Source: src, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown before Start = %v", err)
		}
	})
}

// A client that never finishes its headers must not hold a connection
// open: that is how one misbehaving script exhausts an admin port.
func TestSlowHeadersAreCut(t *testing.T) {
	s, err := New(Options{Listen: "127.0.0.1:0", Source: &fakeSource{}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if s.srv.ReadHeaderTimeout <= 0 || s.srv.ReadTimeout <= 0 || s.srv.WriteTimeout <= 0 || s.srv.MaxHeaderBytes <= 0 {
		t.Fatalf("server limits not set: %+v", s.srv)
	}
	s.srv.ReadHeaderTimeout = 100 * time.Millisecond
	f := &fixture{srv: s}
	f.start(t)

	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")); err != nil {
		t.Fatal(err)
	}
	// The deadline bounds the test; the server must close well before it.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server kept a connection with unfinished headers open")
	}
}
