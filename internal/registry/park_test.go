package registry

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address ip, so one test can be several clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// openWatch starts a watch stream and reads its first line; the caller
// closes the body to end it.
func openWatch(t *testing.T, c *http.Client, u string) (int, string, io.Closer) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b), nil
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatalf("first line of the watch: %v", err)
	}
	return 200, line, resp.Body
}

// gatherParked reads the registry's bound metrics the way the admin
// listener's /metrics would.
func gatherParked(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister((&Server{node: n}).Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "{" + l.GetValue() + "}"
			}
			if c := m.GetCounter(); c != nil {
				got[k] = c.GetValue()
			} else {
				got[k] = m.GetGauge().GetValue()
			}
		}
	}
	return got
}

// TestParkedPerClientBound: one client address gets at most
// MaxParkedPerClient watches and blocking queries; the next is refused
// with 429 and a message naming the bound, while another address is still
// served.
func TestParkedPerClientBound(t *testing.T) {
	n := startNode(t, Options{MaxParkedPerClient: 2})
	do(t, "PUT", "http://"+n.ID()+"/v1/registry/instances", "", map[string]any{"service": "w", "ip": "127.0.0.1", "port": 80})
	u := "http://" + n.ID() + "/v1/registry/watch/public/DEFAULT_GROUP/w"
	a, b := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	for i := 0; i < 2; i++ {
		code, line, body := openWatch(t, a, u)
		if code != 200 {
			t.Fatalf("watch %d from 127.0.0.1: %d %s", i, code, line)
		}
		defer body.Close()
	}
	// A blocking query counts against the same bound as a watch.
	bq := "http://" + n.ID() + "/v1/registry/services/public/DEFAULT_GROUP/w?wait=1m&index=" + strconv.FormatUint(n.Store().Index(), 10)
	for _, target := range []string{u, bq} {
		resp, err := a.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(msg), "registry.max_watchers_per_client") {
			t.Fatalf("third parked request from 127.0.0.1: %d %q", resp.StatusCode, msg)
		}
	}
	code, line, body := openWatch(t, b, u)
	if code != 200 {
		t.Fatalf("watch from 127.0.0.2 while 127.0.0.1 is at its bound: %d %s", code, line)
	}
	defer body.Close()
	m := gatherParked(t, n)
	if m["strata_registry_watchers"] != 3 || m["strata_registry_watcher_clients"] != 2 ||
		m["strata_registry_watchers_refused_total{client}"] != 2 || m["strata_registry_watchers_refused_total{node}"] != 0 {
		t.Fatalf("metrics: %v", m)
	}
}

// TestWatchWriteDeadline: a watcher that stops reading is disconnected
// once a line cannot be written within WatchWriteTimeout, freeing its
// slot, and the disconnection is counted.
func TestWatchWriteDeadline(t *testing.T) {
	// Instances padded with 8 KiB of metadata fill the socket buffers in
	// a few answers; the metadata limit is raised to let them in.
	n := startNode(t, Options{WatchWriteTimeout: 300 * time.Millisecond, Limits: Limits{MetadataBytes: 16 << 10}})
	base := "http://" + n.ID()
	big := strings.Repeat("x", 8<<10)
	register := func(i int) {
		code, b, _ := do(t, "PUT", base+"/v1/registry/instances", "", map[string]any{"service": "s", "ip": "127.0.0.1", "port": 1000 + i, "metadata": map[string]string{"pad": big}})
		if code != 200 {
			t.Fatalf("register %d: %d %s", i, code, b)
		}
	}
	register(0)
	c, err := net.Dial("tcp", n.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /v1/registry/watch/public/DEFAULT_GROUP/s HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, 5*time.Second, "the watch to park", func() bool { return n.parked.Load() == 1 })
	// Every registration makes the next line 8 KiB longer; the socket
	// buffers fill after a few dozen and the write then waits out its
	// deadline. The loop is bounded: 1000 lines are hundreds of MiB.
	for i := 1; n.parked.Load() > 0; i++ {
		if i > 1000 {
			t.Fatal("the watch is still parked after 1000 changes nobody read")
		}
		register(i)
	}
	if got := gatherParked(t, n)["strata_registry_watch_write_timeouts_total"]; got != 1 {
		t.Fatalf("write timeouts counted: %v, want 1", got)
	}
}
