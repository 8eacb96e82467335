package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// freeAddr returns a loopback address with a port no one listens on now.
func freeAddr(t *testing.T) string { return testnet.FreeAddr(t) }

// selfToken is the admin token of selfConfig. The client of the data
// plane in these tests holds it too: the worst case, a token that leaked
// or that a proxy in front adds, must not open the admin API either.
const selfToken = "self-test-admin-token"

// selfConfig is one strata process with an admin listener, a registry, a
// static pool "web" to drain, and an l7 listener whose pool "app" follows
// the registry's service "app" (allowing loopback instances, so that what
// keeps the admin listener out is the listener check, not the default).
func selfConfig(admin, reg, extraL7 string) string {
	c := fmt.Sprintf(`admin:
  listen: %s
  token: `+selfToken+`
pools:
  - name: web
    backends: [{name: w1, address: 192.0.2.1:80}]
  - name: app
    registry:
      servers: [%s]
      service: app
      allow: [127.0.0.0/8]
registry:
  listen: %s
  raft_listen: 127.0.0.1:0
  data: memory
l7:
  listeners:
    - name: edge
      listen: 127.0.0.1:0
      routes:
        - pool: app
`, admin, reg, reg)
	if extraL7 != "" {
		c += fmt.Sprintf("    - name: extra\n      listen: %s\n      routes:\n        - pool: app\n", extraL7)
	}
	return c
}

func startSupervisor(t *testing.T, conf string) (*Supervisor, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "strata.yaml")
	writeConfig(t, path, conf)
	sup := New(Options{Source: Source{Path: path}, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sup.Shutdown(ctx)
	})
	return sup, path
}

func poolNamed(sup *Supervisor, name string) *upstream.Pool {
	for _, p := range sup.Pools() {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

func poolHas(p *upstream.Pool, addr string) bool { return p.Snapshot().Lookup(addr) != nil }

// drainThrough sends the drain of web/w1 to the l7 listener at l7 with a
// loopback Host, as any client of the data plane could, and the admin
// token, and returns the statuses and bodies it got.
func drainThrough(t *testing.T, l7 string, n int) (statuses []int, bodies []string) {
	t.Helper()
	for range n {
		req, err := http.NewRequest(http.MethodPost, "http://"+l7+"/api/v1/pools/web/backends/w1/drain", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "127.0.0.1"
		req.Header.Set("Authorization", "Bearer "+selfToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
		bodies = append(bodies, string(b))
	}
	return statuses, bodies
}

// TestNoAdminWriteThroughOwnDataPlane is door 2 of the security issue, end
// to end in one process: an instance registered at the admin listener's
// address never joins the l7 pool that follows the registry, so a drain
// sent through the l7 listener with Host: 127.0.0.1 reaches an app, not
// the admin API; the operator's own drain still works. An instance at the
// address of a listener that a reload adds leaves the pool with the
// reload. And when the admin listener belongs to another strata process,
// which this one cannot know, the admin API refuses the write because
// strata's l7 marks every request it forwards.
func TestNoAdminWriteThroughOwnDataPlane(t *testing.T) {
	app := backend(t, "APP")
	reg, extra, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	sup, path := startSupervisor(t, selfConfig(adminAddr, reg, ""))
	l7Addr := sup.L7().Addrs()[0].String()
	web, pool := poolNamed(sup, "web"), poolNamed(sup, "app")

	putInstance(t, reg, "app", adminAddr, nil)
	putInstance(t, reg, "app", l7Addr, nil)
	putInstance(t, reg, "app", extra, nil)
	putInstance(t, reg, "app", app, nil)
	eventually(t, 5*time.Second, "the app instance in the pool", func() bool { return poolHas(pool, app) && poolHas(pool, extra) })
	for _, own := range []string{adminAddr, l7Addr} {
		if poolHas(pool, own) {
			t.Errorf("the pool took %s, an address this process listens on", own)
		}
	}

	statuses, bodies := drainThrough(t, l7Addr, 8)
	for i, st := range statuses {
		if bodies[i] == "APP" {
			continue
		}
		// Nothing listens at extra yet: l7 answers 502 for it.
		if st == http.StatusOK {
			t.Errorf("request %d through l7 answered 200 %q, not by the app", i, bodies[i])
		}
	}
	if st := web.Snapshot().Lookup("w1").State; st != upstream.StateUp {
		t.Fatalf("w1 is %v after drains sent through the l7 listener", st)
	}

	// A reload binds a listener at the address of an instance already in
	// the pool: the instance leaves it.
	writeConfig(t, path, selfConfig(adminAddr, reg, extra))
	if err := sup.Reload(); err != nil {
		t.Fatal(err)
	}
	if poolHas(pool, extra) {
		t.Errorf("after the reload that listens on %s, the pool still holds it", extra)
	}
	if !poolHas(pool, app) {
		t.Errorf("after the reload the pool lost the app instance")
	}

	// The normal path: the operator drains w1 directly, with the token.
	req, _ := http.NewRequest(http.MethodPost, "http://"+adminAddr+"/api/v1/pools/web/backends/w1/drain", nil)
	req.Header.Set("Authorization", "Bearer "+selfToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || web.Snapshot().Lookup("w1").State != upstream.StateDraining {
		t.Fatalf("direct drain = %d, w1 %v; want 200 and draining", res.StatusCode, web.Snapshot().Lookup("w1").State)
	}
	if err := web.SetState("w1", upstream.StateUp); err != nil {
		t.Fatal(err)
	}

	// Another strata process follows the same service: it cannot know
	// this process's admin listener, and its pool takes the instance.
	other := fmt.Sprintf(`admin:
  listen: off
pools:
  - name: app
    registry:
      servers: [%s]
      service: app
      allow: [127.0.0.0/8]
l7:
  listeners:
    - name: other
      listen: 127.0.0.1:0
      routes:
        - pool: app
`, reg)
	sup2, _ := startSupervisor(t, other)
	pool2 := poolNamed(sup2, "app")
	eventually(t, 5*time.Second, "the other process's pool to take the admin address", func() bool { return poolHas(pool2, adminAddr) && poolHas(pool2, app) })
	statuses, bodies = drainThrough(t, sup2.L7().Addrs()[0].String(), 8)
	refused := 0
	for i, st := range statuses {
		if st == http.StatusForbidden && strings.Contains(bodies[i], "through a proxy") {
			refused++
		} else if bodies[i] != "APP" && st != http.StatusBadGateway {
			t.Errorf("request %d through the other l7 = %d %q", i, st, bodies[i])
		}
	}
	if refused == 0 {
		t.Errorf("no drain reached the admin API through the other process (statuses %v), so the test proves nothing", statuses)
	}
	if st := web.Snapshot().Lookup("w1").State; st != upstream.StateUp {
		t.Fatalf("w1 is %v after drains sent through another strata's l7", st)
	}
}

// A configured listen address stands for the addresses it accepts on: a
// wildcard for every address, localhost for both loopbacks, a range for
// each port; port 0 and names stand for nothing until bound.
func TestListenersOfConfig(t *testing.T) {
	got := appendHostPort(nil, ":9901")
	got = appendHostPort(got, "localhost:80")
	got = appendHostPort(got, "127.0.0.1:7000-7002")
	got = appendHostPort(got, "127.0.0.1:0")
	got = appendHostPort(got, "lb.example:80")
	want := []string{"[::]:9901", "127.0.0.1:80", "[::1]:80", "127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}
	var gs []string
	for _, a := range got {
		gs = append(gs, a.String())
	}
	if !slices.Equal(gs, want) {
		t.Errorf("appendHostPort = %v, want %v", gs, want)
	}
}

// An l4 service relays bytes and adds no proxy field: a write it relays to
// this process's own admin listener arrives from a loopback peer with
// whatever Host the client wrote. The admin listener recognises the peer
// as l4's own connection to a backend and refuses; the same write sent
// directly is obeyed.
func TestNoAdminWriteThroughOwnL4(t *testing.T) {
	adminAddr := freeAddr(t)
	conf := fmt.Sprintf(`admin:
  listen: %s
pools:
  - name: web
    backends: [{name: w1, address: 192.0.2.1:80}]
  - name: loop
    backends: [{address: %s}]
l4:
  services:
    - name: edge
      listen: 127.0.0.1:0
      pool: loop
`, adminAddr, adminAddr)
	sup, _ := startSupervisor(t, conf)
	web := poolNamed(sup, "web")
	l4Addr := sup.L4().Addrs("edge")[0].String()

	raw := func(addr string) string {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "POST /api/v1/pools/web/backends/w1/drain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if got := raw(l4Addr); !strings.HasPrefix(got, "HTTP/1.1 403") || !strings.Contains(got, "relayed by this process") {
		t.Errorf("drain through l4 answered %.200q, want 403", got)
	}
	if st := web.Snapshot().Lookup("w1").State; st != upstream.StateUp {
		t.Fatalf("w1 is %v after a drain relayed by l4", st)
	}
	if got := raw(adminAddr); !strings.HasPrefix(got, "HTTP/1.1 200") || web.Snapshot().Lookup("w1").State != upstream.StateDraining {
		t.Errorf("direct drain answered %.100q, w1 %v; want 200 and draining", got, web.Snapshot().Lookup("w1").State)
	}
}
