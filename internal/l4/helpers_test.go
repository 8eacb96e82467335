package l4

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// namedBackend is testnet.NamedEcho: a TCP server that writes its name, then
// echoes until the client half-closes.
func namedBackend(t *testing.T, name string) string { return testnet.NamedEcho(t, name) }

// newPool makes a pool of the given addresses, named b0, b1 …
func newPool(t *testing.T, lb string, addrs ...string) *upstream.Pool {
	t.Helper()
	b, err := balance.Builder(lb, balance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := upstream.NewPool("app", upstream.Options{Builder: b})
	specs := make([]upstream.Spec, len(addrs))
	for i, a := range addrs {
		specs[i] = upstream.Spec{Name: "b" + string(rune('0'+i)), Addr: a, Weight: 1}
	}
	if err := p.Update(specs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// service returns a service config with defaults applied.
func svcConfig(name, proto string, mod func(*config.L4Service)) config.L4Service {
	sc := config.L4Service{Name: name, Protocol: proto, Listen: "127.0.0.1:0", Pool: "app"}
	if mod != nil {
		mod(&sc)
	}
	c := &config.Config{L4: &config.L4{Services: []config.L4Service{sc}}}
	c.ApplyDefaults()
	return c.L4.Services[0]
}

func startServer(t *testing.T, pools map[string]*upstream.Pool, svcs ...config.L4Service) *Server {
	t.Helper()
	s, err := NewServer(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&config.L4{Services: svcs}, pools); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func addrOf(t *testing.T, s *Server, svc string) string {
	t.Helper()
	a := s.Addrs(svc)
	if len(a) == 0 {
		t.Fatalf("service %s has no socket", svc)
	}
	return a[0].String()
}

// dialName connects through the proxy and returns the backend's name and
// the open connection.
func dialName(t *testing.T, addr string) (string, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		t.Fatalf("reading the backend's name: %v", err)
	}
	return strings.TrimSpace(line), c
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !poll(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// poll reports whether cond holds within 5 seconds.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
