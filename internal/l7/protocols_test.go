package l7

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// writeCert writes a self-signed certificate for names (serial tells two
// versions apart) and its key into dir, and returns the file paths.
func writeCert(t *testing.T, dir, base string, serial int64, names ...string) config.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	c := config.Certificate{CertFile: filepath.Join(dir, base+".pem"), KeyFile: filepath.Join(dir, base+".key")}
	// Written to temporary names and renamed, as certificate tools do, so
	// the poller never reads half a file.
	for path, block := range map[string]*pem.Block{c.CertFile: {Type: "CERTIFICATE", Bytes: der}, c.KeyFile: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(path+".tmp", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// servedCert connects with TLS to addr for serverName and returns the
// leaf's serial and the negotiated protocol.
func servedCert(t *testing.T, addr, serverName string, alpn ...string) (int64, string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: alpn})
	if err != nil {
		t.Fatalf("TLS to %s for %q: %v", addr, serverName, err)
	}
	defer c.Close()
	st := c.ConnectionState()
	return st.PeerCertificates[0].SerialNumber.Int64(), st.NegotiatedProtocol
}

func TestTLSBySNIAndReload(t *testing.T) {
	dir := t.TempDir()
	a := writeCert(t, dir, "a", 1, "a.test")
	b := writeCert(t, dir, "b", 2, "*.b.test")
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Header.Get("X-Forwarded-Proto"), r.Proto)
	}))
	pools := map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}
	s := NewServer(Options{Logger: quietLogger(), CertPollInterval: 20 * time.Millisecond})
	t.Cleanup(func() { shutdown(t, s) })
	lc := config.Listener{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "p"}},
		TLS: &config.ListenerTLS{Certificates: []config.Certificate{a, b}}}
	if err := s.Apply(&config.L7{Listeners: []config.Listener{lc}}, pools); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0].String()
	tests := []struct {
		desc, name string
		want       int64
	}{
		{desc: "exact name", name: "a.test", want: 1},
		{desc: "wildcard", name: "x.b.test", want: 2},
		{desc: "unknown name gets the first", name: "other.test", want: 1},
		{desc: "no SNI gets the first", name: "", want: 1},
	}
	for _, tc := range tests {
		if got, _ := servedCert(t, addr, tc.name); got != tc.want {
			t.Errorf("%s: served serial %d, want %d", tc.desc, got, tc.want)
		}
	}
	if _, proto := servedCert(t, addr, "a.test", "h2", "http/1.1"); proto != "h2" {
		t.Errorf("ALPN chose %q, want h2", proto)
	}

	// HTTP/2 over TLS end to end, and X-Forwarded-Proto says https.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "https HTTP/1.1" {
		t.Errorf("h2 client: %s, backend saw %q; want HTTP/2 and \"https HTTP/1.1\"", resp.Proto, body)
	}

	// A certificate renewed on disk is served without a reload.
	writeCert(t, dir, "a", 3, "a.test")
	eventually(t, 5*time.Second, "the renewed certificate", func() bool {
		got, _ := servedCert(t, addr, "a.test")
		return got == 3
	})
	// A reload that names a missing file fails and keeps the running set.
	lc.TLS = &config.ListenerTLS{Certificates: []config.Certificate{{CertFile: dir + "/none.pem", KeyFile: dir + "/none.key"}}}
	if err := s.Apply(&config.L7{Listeners: []config.Listener{lc}}, pools); err == nil {
		t.Fatal("Apply with a missing certificate succeeded")
	}
	if got, _ := servedCert(t, addr, "x.b.test"); got != 2 {
		t.Errorf("after a failed reload: serial %d, want 2", got)
	}
	// Turning TLS off on a running listener is refused.
	lc.Listen, lc.TLS = addr, nil
	if err := s.Apply(&config.L7{Listeners: []config.Listener{lc}}, pools); err == nil || !strings.Contains(err.Error(), "needs a new listen address") {
		t.Errorf("turning TLS off: %v", err)
	}
}

// h2cClient speaks cleartext HTTP/2 by prior knowledge.
func h2cClient() *http.Client {
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// h2cBackend is a net/http server speaking cleartext HTTP/2 (and 1.1)
// that answers with a body and trailers, as gRPC servers do.
func h2cBackend(t *testing.T) *backend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String()}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "application/grpc")
		fmt.Fprintf(w, "%s te=%s", r.Proto, r.Header.Get("Te"))
		w.Header().Set("Grpc-Status", "7")
	})}
	b.srv.Protocols = new(http.Protocols)
	b.srv.Protocols.SetHTTP1(true)
	b.srv.Protocols.SetUnencryptedHTTP2(true)
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func TestH2CAndH2CUpstreamTrailers(t *testing.T) {
	be := h2cBackend(t)
	pools := map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}
	s := NewServer(Options{Logger: quietLogger()})
	t.Cleanup(func() { shutdown(t, s) })
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", H2C: true, Routes: []config.Route{{Pool: "p"}}}}}
	if err := s.ApplyWith(cfg, pools, map[string]string{"p": "h2c"}); err != nil {
		t.Fatal(err)
	}
	url := "http://" + s.Addrs()[0].String() + "/svc/Method"
	for _, tc := range []struct {
		desc   string
		c      *http.Client
		client string
	}{
		{desc: "h2c prior knowledge", c: h2cClient(), client: "HTTP/2.0"},
		{desc: "HTTP/1.1 client", c: &http.Client{Timeout: 10 * time.Second}, client: "HTTP/1.1"},
	} {
		req, _ := http.NewRequest("POST", url, strings.NewReader("x"))
		req.Header.Set("Te", "trailers")
		resp, err := tc.c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != tc.client || string(body) != "HTTP/2.0 te=trailers" || resp.Trailer.Get("Grpc-Status") != "7" {
			t.Errorf("%s: %s, body %q, trailer %q; want %s, backend over HTTP/2 with TE, Grpc-Status 7",
				tc.desc, resp.Proto, body, resp.Trailer.Get("Grpc-Status"), tc.client)
		}
	}

	// h2c by Upgrade (RFC 7540 §3.2): the proxy switches and answers the
	// first request over HTTP/2.
	c, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("h2c upgrade: %v %v, want 101", resp, err)
	}
}

func TestForwardedHeaders(t *testing.T) {
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"))
	}))
	pools := map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}
	tests := []struct {
		desc    string
		trusted []string
		want    string
	}{
		{desc: "untrusted client: replaced", trusted: nil, want: "127.0.0.1|http|app.test"},
		{desc: "other network trusted: replaced", trusted: []string{"10.0.0.0/8"}, want: "127.0.0.1|http|app.test"},
		{desc: "trusted proxy: appended and kept", trusted: []string{"127.0.0.0/8"}, want: "198.51.100.1, 127.0.0.1|https|front.test"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			s := NewServer(Options{Logger: quietLogger()})
			t.Cleanup(func() { shutdown(t, s) })
			cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", TrustedProxies: tc.trusted, Routes: []config.Route{{Pool: "p"}}}}}
			if err := s.Apply(cfg, pools); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", "http://"+s.Addrs()[0].String()+"/", nil)
			req.Host = "app.test"
			req.Header.Set("X-Forwarded-For", "198.51.100.1")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "front.test")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != tc.want {
				t.Errorf("backend saw %q, want %q", body, tc.want)
			}
		})
	}
}

func TestProxyProtocol(t *testing.T) {
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	}))
	pools := map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}
	start := func(allow string) string {
		s := NewServer(Options{Logger: quietLogger()})
		t.Cleanup(func() { shutdown(t, s) })
		cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "p"}},
			ProxyProtocol: &config.ProxyProtocol{Allow: []string{allow}, Timeout: config.Duration(time.Second)}}}}
		if err := s.Apply(cfg, pools); err != nil {
			t.Fatal(err)
		}
		return s.Addrs()[0].String()
	}
	v2 := func() string {
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 4000}, &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 80})
		b, err := h.Format()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	send := func(addr, header string) (string, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, header+"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(resp.Body)
		return string(body), nil
	}
	allowed := start("127.0.0.1")
	tests := []struct {
		desc, addr, header, want string
		fails                    bool
	}{
		{desc: "v1 from an allowed source", addr: allowed, header: "PROXY TCP4 203.0.113.7 127.0.0.1 4000 80\r\n", want: "203.0.113.7"},
		{desc: "v2 from an allowed source", addr: allowed, header: v2(), want: "203.0.113.9"},
		{desc: "no header from an allowed source", addr: allowed, header: "", fails: true},
		{desc: "header from a source not allowed", addr: start("10.0.0.0/8"), header: "PROXY TCP4 203.0.113.7 127.0.0.1 4000 80\r\n", fails: true},
	}
	for _, tc := range tests {
		got, err := send(tc.addr, tc.header)
		if tc.fails != (err != nil) || (!tc.fails && got != tc.want) {
			t.Errorf("%s: got %q, %v; want %q (fails %v)", tc.desc, got, err, tc.want, tc.fails)
		}
	}
	// A source that is not allowed may still speak plain HTTP.
	if got, err := send(start("10.0.0.0/8"), ""); err != nil || got != "127.0.0.1" {
		t.Errorf("plain request from a source not allowed: %q %v", got, err)
	}
}

// metricValue reads one series from reg: a counter's value or a
// histogram's sample count.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	m := findSeries(t, reg, name, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// findSeries returns the first series of name whose labels include
// labels, or nil.
func findSeries(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func TestAccessLogAndMetrics(t *testing.T) {
	be := startBackend(t, named("one"))
	pools := map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}
	reg := prometheus.NewRegistry()
	s := NewServer(Options{Logger: quietLogger(), Registry: reg})
	t.Cleanup(func() { shutdown(t, s) })
	logPath := filepath.Join(t.TempDir(), "access.log")
	cfg := &config.L7{Listeners: []config.Listener{{Name: "web", Listen: "127.0.0.1:0",
		AccessLog: &config.AccessLog{Path: logPath, Format: "json"},
		Routes:    []config.Route{{Name: "api", PathPrefix: "/api/", Pool: "p"}}}}}
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	url := "http://" + s.Addrs()[0].String()
	for _, path := range []string{"/api/a", "/api/b", "/api/c", "/nothing"} {
		get(t, http.DefaultClient, url+path, "")
	}
	checks := []struct {
		desc   string
		name   string
		labels map[string]string
		want   float64
	}{
		{"route 2xx", "strata_l7_requests_total", map[string]string{"listener": "web", "route": "api", "code": "2xx"}, 3},
		{"unrouted 4xx", "strata_l7_requests_total", map[string]string{"listener": "web", "route": "", "code": "4xx"}, 1},
		{"route latency samples", "strata_l7_request_duration_seconds", map[string]string{"route": "api"}, 3},
		{"backend 2xx", "strata_l7_backend_responses_total", map[string]string{"pool": "p", "code": "2xx"}, 3},
		{"connections accepted", "strata_l7_connections_total", map[string]string{"listener": "web"}, 1},
	}
	for _, c := range checks {
		if got := metricValue(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s: %s%v = %g, want %g", c.desc, c.name, c.labels, got, c.want)
		}
	}
	var lines []string
	eventually(t, 5*time.Second, "four access log lines", func() bool {
		data, _ := os.ReadFile(logPath)
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		return len(lines) == 4
	})
	var e map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatalf("line %q is not JSON: %v", lines[0], err)
	}
	if e["uri"] != "/api/a" || e["status"] != float64(200) || e["route"] != "api" || e["backend"] != be.addr || e["listener"] != "web" {
		t.Errorf("first line = %v", e)
	}
	if !strings.Contains(lines[3], `"status":404`) {
		t.Errorf("unrouted line = %s", lines[3])
	}

	// A reload that renames the route deletes the old route's series and
	// keeps the listener's own.
	cfg.Listeners[0].Routes[0].Name = "api2"
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	get(t, http.DefaultClient, url+"/api/a", "")
	if hasSeries(t, reg, "strata_l7_requests_total", map[string]string{"route": "api"}) ||
		hasSeries(t, reg, "strata_l7_request_duration_seconds", map[string]string{"route": "api"}) {
		t.Error("the removed route's series are still exported")
	}
	if got := metricValue(t, reg, "strata_l7_requests_total", map[string]string{"route": "api2", "code": "2xx"}); got != 1 {
		t.Errorf("renamed route 2xx = %g, want 1", got)
	}
	if !hasSeries(t, reg, "strata_l7_requests_total", map[string]string{"listener": "web", "route": ""}) {
		t.Error("the listener's unrouted series went with the old route")
	}
}

// hasSeries reports whether reg exports a series of name with labels.
func hasSeries(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) bool {
	t.Helper()
	return findSeries(t, reg, name, labels) != nil
}

func TestRemovedListenerDrainsTunnels(t *testing.T) {
	pools := map[string]*upstream.Pool{"a": newPool(t, "a", upgradeBackend(t, "a").addr)}
	s := NewServer(Options{Logger: quietLogger(), DrainTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { shutdown(t, s) })
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "a"}}}}}
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	c, br, resp := dialUpgrade(t, "http://"+s.Addrs()[0].String(), "shout")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	fmt.Fprintf(c, "hi\n")
	if line, err := br.ReadString('\n'); err != nil || line != "a:HI\n" {
		t.Fatalf("tunnel: %q %v", line, err)
	}
	// Another listener replaces it: the tunnel is cut once the drain
	// timeout has passed, not left open for ever.
	cfg = &config.L7{Listeners: []config.Listener{{Listen: freeAddr(t), Routes: []config.Route{{Pool: "a"}}}}}
	began := time.Now()
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("tunnel still open")
	}
	if d := time.Since(began); d < 250*time.Millisecond || d > 4*time.Second {
		t.Errorf("tunnel cut after %v, want about the 300ms drain timeout", d)
	}
}

// TestExpectContinueToH2CBackend: with an HTTP/2 backend the request body
// is read by the transport's goroutine while the handler writes the
// response. A backend that answers without reading the body must leave the
// client a final response and never a 100 Continue after it; a client that
// got its 100 sends the body, as curl does, and one that got the final
// response first sends nothing and must not hold the server up.
func TestExpectContinueToH2CBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden) // no read of the body
		io.WriteString(w, "no")
	})}
	be.Protocols = new(http.Protocols)
	be.Protocols.SetUnencryptedHTTP2(true)
	go be.Serve(ln)
	t.Cleanup(func() { be.Close() })
	pools := map[string]*upstream.Pool{"p": newPool(t, "p", ln.Addr().String())}
	s := NewServer(Options{Logger: quietLogger()})
	t.Cleanup(func() { shutdown(t, s) })
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", Routes: []config.Route{{Pool: "p"}}}}}
	if err := s.ApplyWith(cfg, pools, map[string]string{"p": "h2c"}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		c, err := net.Dial("tcp", s.Addrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err == nil && resp.StatusCode == http.StatusContinue {
			io.WriteString(c, "hello")
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			c.Close()
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden || string(body) != "no" {
			t.Fatalf("request %d: %d %q, want the backend's 403", i, resp.StatusCode, body)
		}
		// Whatever follows the final response must not be another head,
		// and the server closes the connection as asked, without
		// waiting for a body the client was not asked for.
		rest, err := io.ReadAll(br)
		c.Close()
		if len(rest) > 0 || err != nil {
			t.Fatalf("request %d: %q, %v after the final response, want the close", i, rest, err)
		}
	}
}
