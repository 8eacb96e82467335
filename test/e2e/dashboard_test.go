package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// TestDashboardInChromium runs the whole chain (dns → l4 → l7 → three app
// instances, with a registry beside) in one strata process, sends it a
// bounded stream of requests, opens the dashboard in headless Chromium
// through chromedriver, and checks what a person would: every hop and every
// backend is on the page; Drain without the admin token shows the API's
// refusal; with the token typed in, clicking Drain on one instance makes its
// share of new requests fall to 0 and its row say draining; Restore brings
// it back; a weight typed into its field reaches the pool.
//
// Set STRATA_SCREENSHOT=/some/file.png to keep a screenshot of the page.
func TestDashboardInChromium(t *testing.T) {
	chromium := testnet.NeedTool(t, "chromium", "chromium")
	driver := testnet.NeedTool(t, "chromedriver", "chromium-driver")

	apps := make([]string, 3)
	for i := range apps {
		name := fmt.Sprintf("app-%d", i+1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello from "+name+"\n")
		}))
		t.Cleanup(srv.Close)
		apps[i] = strings.TrimPrefix(srv.URL, "http://")
	}
	adminAddr, l7Addr, l4Addr, dnsAddr, regAddr, raftAddr := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	const token = "dashboard-test-token"
	conf := fmt.Sprintf(`admin:
  listen: %[1]s
  token: %[10]s
pools:
  - name: vip
    backends:
      - name: edge
        address: %[3]s
  - name: l7-nodes
    backends:
      - name: l7-a
        address: %[2]s
  - name: app
    lb: wrr
    health:
      type: http
      path: /
      interval: 1s
      timeout: 500ms
      rise: 1
    backends:
      - {name: app-1, address: %[7]s, zone: zone-a}
      - {name: app-2, address: %[8]s, zone: zone-a}
      - {name: app-3, address: %[9]s, zone: zone-b}
dns:
  listen: [%[4]s]
  zones:
    - name: demo.test
      records:
        - "@ SOA ns1 hostmaster 1 3600 600 86400 60"
        - "@ NS ns1"
        - "ns1 A 127.0.0.1"
      balanced:
        - name: www
          pool: vip
l4:
  services:
    - name: edge
      listen: %[3]s
      pool: l7-nodes
l7:
  listeners:
    - name: web
      listen: %[2]s
      routes:
        - pool: app
registry:
  listen: %[5]s
  raft_listen: %[6]s
  data: memory
`, adminAddr, l7Addr, l4Addr, dnsAddr, regAddr, raftAddr, apps[0], apps[1], apps[2], token)
	path := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startStrata(t, path)

	// Bounded traffic through l4 and l7, for as long as the test needs it.
	ctx, stop := context.WithTimeout(context.Background(), 45*time.Second)
	var traffic sync.WaitGroup
	var sent, failed int
	var failures []string // the first few, so a failure says what it was
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		client := &http.Client{Timeout: 2 * time.Second}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for sent < 20000 {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			sent++
			res, err := client.Get("http://" + l4Addr + "/")
			if err == nil {
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if err == nil && res.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", res.StatusCode)
				}
			}
			if err != nil {
				failed++
				if len(failures) < 5 {
					failures = append(failures, time.Now().Format("15:04:05.000 ")+err.Error())
				}
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		traffic.Wait()
		t.Logf("traffic: %d requests, %d failed", sent, failed)
	})

	wd := startWebDriver(t, driver, chromium)
	base := "http://" + adminAddr + "/"
	wd.call(t, "POST", "/url", map[string]any{"url": base})

	// Every hop of the chain, and every backend with a share of traffic.
	wd.waitPage(t, 8*time.Second, "every hop and every backend with live rates", func(p page) string {
		for role, hop := range map[string]string{"dns": "demo.test", "l4": "edge", "l7": "web", "app": "app", "registry": regAddr} {
			if !p.hasHop(role, hop) {
				return fmt.Sprintf("no %s hop %q", role, hop)
			}
		}
		for _, want := range []string{"vip/edge", "l7-nodes/l7-a", "app/app-1", "app/app-2", "app/app-3"} {
			r := p.row(want)
			if r == nil {
				return "no row for " + want
			}
			if r.State != "up" {
				return want + " is " + r.State
			}
		}
		for _, b := range []string{"app/app-1", "app/app-2", "app/app-3"} {
			if s := p.row(b).Share; s == "" || s == "0.0000" {
				return b + " has no share of traffic yet: " + s
			}
		}
		return ""
	})

	// Without the token the API refuses, and the page says so.
	wd.click(t, `tr[data-pool="app"][data-backend="app-2"] button.drain`)
	wd.waitPage(t, 5*time.Second, "the refusal on the page", func(p page) string {
		if !strings.Contains(p.Error, "missing bearer token") || !strings.Contains(p.Error, "admin token") {
			return fmt.Sprintf("the page shows %q, want the missing token and where to enter it", p.Error)
		}
		return ""
	})
	if st := backendState(t, adminAddr, "app", "app-2"); st.State != "up" {
		t.Fatalf("app-2 is %q after a write without the token", st.State)
	}

	wd.typeInto(t, "#token", token)
	wd.click(t, `#token-form button[type=submit]`)
	wd.click(t, `tr[data-pool="app"][data-backend="app-2"] button.drain`)
	wd.waitPage(t, 10*time.Second, "app-2 draining with no new requests", func(p page) string {
		if p.Error != "" {
			return "the page shows an error: " + p.Error
		}
		r := p.row("app/app-2")
		if r.State != "draining" || !strings.Contains(r.Text, "draining") || !strings.Contains(r.Text, "Restore") {
			return fmt.Sprintf("app-2's row is %q: %q", r.State, r.Text)
		}
		if r.Share != "0.0000" {
			return "app-2's share is " + r.Share
		}
		for _, b := range []string{"app/app-1", "app/app-3"} {
			if s := p.row(b).Share; s == "" || s == "0.0000" {
				return b + "'s share is " + s
			}
		}
		return ""
	})
	if st := backendState(t, adminAddr, "app", "app-2"); st.State != "draining" {
		t.Errorf("the admin API says app-2 is %q after the click, want draining", st.State)
	}
	wd.screenshot(t)

	wd.click(t, `tr[data-pool="app"][data-backend="app-2"] button.restore`)
	wd.waitPage(t, 10*time.Second, "app-2 back in the split", func(p page) string {
		r := p.row("app/app-2")
		if r.State != "up" || !strings.Contains(r.Text, "Drain") {
			return fmt.Sprintf("app-2's row is %q: %q", r.State, r.Text)
		}
		if r.Share == "" || r.Share == "0.0000" {
			return "app-2's share is " + r.Share
		}
		return ""
	})

	wd.typeInto(t, `tr[data-pool="app"][data-backend="app-1"] input`, "3")
	wd.click(t, `tr[data-pool="app"][data-backend="app-1"] .weight button`)
	eventually(t, 5*time.Second, "app-1's weight to reach the pool", func() bool {
		return backendState(t, adminAddr, "app", "app-1").Weight == 3
	})
	stop()
	traffic.Wait()
	if failed > 0 {
		t.Errorf("%d of %d requests failed through the chain: %q", failed, sent, failures)
	}
}

// backendState reads a backend from the admin API, as curl would.
func backendState(t *testing.T, adminAddr, pool, backend string) (b struct {
	State  string
	Weight int
}) {
	t.Helper()
	res, err := http.Get("http://" + adminAddr + "/api/v1/pools/" + pool + "/backends/" + backend)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// page is what the test reads of the dashboard's DOM.
type page struct {
	Rows []struct {
		Pool, Backend, State, Share, Text string
	}
	Hops []struct {
		Role  string
		Off   bool
		Names []string
	}
	Error string
}

const readPage = `
const rows = [...document.querySelectorAll('tr[data-backend]')].map((r) => ({
  Pool: r.dataset.pool, Backend: r.dataset.backend, State: r.dataset.state || '',
  Share: r.dataset.share || '', Text: r.innerText }));
const hops = [...document.querySelectorAll('.hop')].map((h) => ({
  Role: h.dataset.role, Off: h.classList.contains('off'),
  Names: [h, ...h.querySelectorAll('[data-hop]')].map((e) => e.dataset.hop).filter(Boolean) }));
const e = document.getElementById('error');
return { Rows: rows, Hops: hops, Error: e && !e.hidden ? e.innerText : '' };`

func (p page) row(poolBackend string) *struct{ Pool, Backend, State, Share, Text string } {
	for i, r := range p.Rows {
		if r.Pool+"/"+r.Backend == poolBackend {
			return &p.Rows[i]
		}
	}
	return &struct{ Pool, Backend, State, Share, Text string }{}
}

func (p page) hasHop(role, name string) bool {
	for _, h := range p.Hops {
		if h.Role == role && !h.Off {
			for _, n := range h.Names {
				if n == name {
					return true
				}
			}
		}
	}
	return false
}

// webDriver speaks the W3C WebDriver protocol to one chromedriver session.
type webDriver struct {
	base    string // http://127.0.0.1:port/session/id
	client  *http.Client
	shotDir string
}

// startWebDriver runs chromedriver on a free loopback port and opens a
// headless Chromium session with a fresh profile.
func startWebDriver(t *testing.T, driver, chromium string) *webDriver {
	t.Helper()
	addr := freePort(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	var log bytes.Buffer
	cmd := exec.Command(driver, "--port="+port, "--allowed-ips=127.0.0.1")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("chromedriver output:\n%s", log.String())
		}
	})
	wd := &webDriver{base: "http://" + addr, client: &http.Client{Timeout: 20 * time.Second}, shotDir: t.TempDir()}
	eventually(t, 10*time.Second, "chromedriver to be ready", func() bool {
		var st struct{ Ready bool }
		return wd.do("GET", "/status", nil, &st) == nil && st.Ready
	})
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args": []string{
				"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--disable-dev-shm-usage", "--window-size=1440,1700",
				"--user-data-dir=" + t.TempDir(),
			},
		},
	}}}
	var sess struct{ SessionID string }
	if err := wd.do("POST", "/session", caps, &sess); err != nil {
		t.Fatalf("starting a Chromium session: %v", err)
	}
	wd.base += "/session/" + sess.SessionID
	t.Cleanup(func() { wd.do("DELETE", "", nil, nil) })
	return wd
}

// do sends one WebDriver command and decodes its "value" into out.
func (wd *webDriver) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, wd.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := wd.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(res.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s %s: decoding answer (%d): %w", method, path, res.StatusCode, err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		json.Unmarshal(env.Value, &e)
		return fmt.Errorf("%s %s: %d %s: %s", method, path, res.StatusCode, e.Error, e.Message)
	}
	if out != nil {
		return json.Unmarshal(env.Value, out)
	}
	return nil
}

func (wd *webDriver) call(t *testing.T, method, path string, body any) {
	t.Helper()
	if err := wd.do(method, path, body, nil); err != nil {
		t.Fatal(err)
	}
}

// waitPage reads the page until check finds nothing wrong, and fails with
// the last complaint at the deadline.
func (wd *webDriver) waitPage(t *testing.T, d time.Duration, what string, check func(page) string) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		var p page
		if err := wd.do("POST", "/execute/sync", map[string]any{"script": readPage, "args": []any{}}, &p); err != nil {
			last = err.Error()
		} else if last = check(p); last == "" {
			return
		}
		if time.Now().After(deadline) {
			wd.screenshot(t)
			t.Fatalf("timed out after %v waiting for %s: %s", d, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// find returns the WebDriver id of the element css selects.
func (wd *webDriver) find(t *testing.T, css string) string {
	t.Helper()
	var el map[string]string
	if err := wd.do("POST", "/element", map[string]any{"using": "css selector", "value": css}, &el); err != nil {
		t.Fatalf("finding %s: %v", css, err)
	}
	for _, id := range el { // the only key is the W3C element identifier
		return id
	}
	t.Fatalf("finding %s: no element in the answer", css)
	return ""
}

func (wd *webDriver) click(t *testing.T, css string) {
	t.Helper()
	wd.call(t, "POST", "/element/"+wd.find(t, css)+"/click", map[string]any{})
}

// typeInto replaces the value of an input as a person typing would.
func (wd *webDriver) typeInto(t *testing.T, css, text string) {
	t.Helper()
	id := wd.find(t, css)
	wd.call(t, "POST", "/element/"+id+"/clear", map[string]any{})
	wd.call(t, "POST", "/element/"+id+"/value", map[string]any{"text": text})
}

// screenshot saves the viewport as PNG to $STRATA_SCREENSHOT, or to the
// test's temp dir, and logs where.
func (wd *webDriver) screenshot(t *testing.T) {
	t.Helper()
	var b64 string
	if err := wd.do("GET", "/screenshot", nil, &b64); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	path := os.Getenv("STRATA_SCREENSHOT")
	if path == "" {
		path = filepath.Join(wd.shotDir, "dashboard.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot of the dashboard: %s", path)
}
