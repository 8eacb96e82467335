package l7

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// upgradeBackend switches to a line protocol that answers each line in
// upper case, prefixed by its name, as a WebSocket server would switch to
// frames. Requests asking for another protocol get 400.
func upgradeBackend(t *testing.T, name string) *backend {
	return startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "shout" || !headerHasToken(r.Header["Connection"], "upgrade") {
			http.Error(w, "want Upgrade: shout", http.StatusBadRequest)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\nConnection: Upgrade\r\nX-Backend: %s\r\n\r\n", name)
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprintf(brw, "%s:%s", name, strings.ToUpper(line))
			brw.Flush()
		}
	}))
}

// dialUpgrade opens a raw connection to the proxy and switches protocols.
func dialUpgrade(t *testing.T, proxyURL, proto string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(proxyURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: %s\r\n\r\n", proto)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp
}

func TestUpgradeTunnel(t *testing.T) {
	pools := map[string]*upstream.Pool{
		"a": newPool(t, "a", upgradeBackend(t, "a").addr),
		"b": newPool(t, "b", upgradeBackend(t, "b").addr),
	}
	s, url := startProxy(t, Options{}, []config.Route{{Pool: "a"}}, pools)
	c, br, resp := dialUpgrade(t, url, "shout")
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("upgrade: %d from %q, want 101 from a", resp.StatusCode, resp.Header.Get("X-Backend"))
	}
	say := func(line, want string) {
		t.Helper()
		fmt.Fprintf(c, "%s\n", line)
		got, err := br.ReadString('\n')
		if err != nil || got != want+"\n" {
			t.Fatalf("sent %q: got %q %v, want %q", line, got, err, want)
		}
	}
	say("hello", "a:HELLO")

	// A reload that moves the route does not touch the open tunnel.
	cfg := &config.L7{Listeners: []config.Listener{{Listen: s.Addrs()[0].String(), Routes: []config.Route{{Pool: "b"}}}}}
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	say("still there", "a:STILL THERE")
	_, _, resp2 := dialUpgrade(t, url, "shout")
	if resp2.Header.Get("X-Backend") != "b" {
		t.Fatalf("new tunnel after Apply went to %q, want b", resp2.Header.Get("X-Backend"))
	}

	// A backend that refuses the upgrade answers the client normally.
	_, _, resp3 := dialUpgrade(t, url, "whisper")
	body, _ := io.ReadAll(resp3.Body)
	if resp3.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "want Upgrade") {
		t.Fatalf("refused upgrade: %d %q, want 400", resp3.StatusCode, body)
	}

	// Closing the client's side ends the tunnel and frees the backend.
	c.Close()
	bk := pools["a"].Snapshot().All[0]
	eventually(t, 5*time.Second, "the tunnel to end", func() bool { return bk.Active.Load() == 0 })
}

func TestShutdownCutsTunnelsAtDeadline(t *testing.T) {
	pools := map[string]*upstream.Pool{"a": newPool(t, "a", upgradeBackend(t, "a").addr)}
	s := NewServer(Options{Logger: quietLogger()})
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "a"}}}}}
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	_, br, resp := dialUpgrade(t, "http://"+s.Addrs()[0].String(), "shout")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown with an open tunnel: %v, want deadline exceeded", err)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("tunnel still open after Shutdown's deadline")
	}
}
