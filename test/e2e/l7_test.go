package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/strata-lb/strata/internal/testnet"
)

// nginxBin returns nginx's path: /usr/sbin, which is not on every user's
// PATH, or else where PATH has it.
func nginxBin(t *testing.T) string {
	t.Helper()
	const bin = "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	return testnet.NeedTool(t, "nginx", "nginx-light")
}

// startNginx runs nginx (Debian nginx-light) on addr from a temporary
// config, answering every request with body, in a process group of its
// own. It returns the master's pid, which is also the group's id.
func startNginx(t *testing.T, addr, body string) int {
	t.Helper()
	bin := nginxBin(t)
	dir := t.TempDir()
	conf := fmt.Sprintf(`worker_processes 1;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server { listen %[2]s; location / { return 200 "%[3]s\n"; } }
}
`, dir, addr, body)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	// nginx's worker outlives a master killed alone and keeps serving;
	// the group is what is killed, so that a killed nginx is gone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	eventually(t, 10*time.Second, "nginx on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return cmd.Process.Pid
}

// writeCertFiles writes a self-signed certificate for name with serial.
func writeCertFiles(t *testing.T, dir, name string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	return certFile, keyFile
}

func serial(t *testing.T, addr, sni string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS to %s (%s): %v", addr, sni, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func curlL7(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(testnet.NeedTool(t, "curl", "curl"), append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
	return string(out), err
}

// wsEcho is a WebSocket backend that echoes every message.
func wsEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if c.Write(context.Background(), typ, msg) != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestL7ProtocolsWithNginxCurlAndWebSocket(t *testing.T) {
	nginxBin(t)
	testnet.NeedTool(t, "curl", "curl")
	n1, n2 := freePort(t), freePort(t)
	pid1 := startNginx(t, n1, "n1")
	startNginx(t, n2, "n2")
	ws := wsEcho(t)
	dir := t.TempDir()
	aCert, aKey := writeCertFiles(t, dir, "a.test", 1)
	bCert, bKey := writeCertFiles(t, dir, "b.test", 2)
	tlsAddr, h2cAddr, ppAddr, adminAddr := freePort(t), freePort(t), freePort(t), freePort(t)
	logPath := filepath.Join(dir, "access.log")
	conf := func(extra string) string {
		return fmt.Sprintf(`admin:
  listen: %s
pools:
  - name: web
    lb: rr
    backends: [{address: %s}, {address: %s}]
  - name: ws
    backends: [{address: %s}]
l7:
  listeners:
    - name: tls
      listen: %s
      tls:
        certificates:
          - {cert_file: %s, key_file: %s}
          - {cert_file: %s, key_file: %s}
      access_log: {path: %s, format: json}
      routes: [{pool: web}]
    - name: plain
      listen: %s
      h2c: true
      trusted_proxies: [10.0.0.0/8]
      routes:
        - {name: ws, path_prefix: /ws, pool: ws}
        - {name: web, pool: web%s}
    - name: pp
      listen: %s
      proxy_protocol: {allow: [127.0.0.1]}
      routes: [{pool: web}]
`, adminAddr, n1, n2, ws, tlsAddr, aCert, aKey, bCert, bKey, logPath, h2cAddr, extra, ppAddr)
	}
	path := filepath.Join(dir, "strata.yaml")
	os.WriteFile(path, []byte(conf("")), 0o600)
	p := startStrata(t, path)

	// TLS: two names by SNI; HTTP/2 by ALPN with curl.
	if serial(t, tlsAddr, "a.test") != 1 || serial(t, tlsAddr, "b.test") != 2 {
		t.Fatal("SNI did not choose the certificates by name")
	}
	_, port, _ := net.SplitHostPort(tlsAddr)
	out, err := curlL7(t, "-k", "--http2", "-o", "/dev/null", "-w", "%{http_version}", "--resolve", "a.test:"+port+":127.0.0.1", "https://a.test:"+port+"/")
	if err != nil || out != "2" {
		t.Errorf("curl --http2 over TLS: %q %v, want HTTP/2", out, err)
	}
	// h2c with prior knowledge and by Upgrade.
	for _, flag := range []string{"--http2-prior-knowledge", "--http2"} {
		out, err := curlL7(t, flag, "-w", " %{http_version}", "http://"+h2cAddr+"/")
		if err != nil || !regexp.MustCompile(`^n[12]\n 2$`).MatchString(out) {
			t.Errorf("curl %s: %q %v, want a body from nginx over HTTP/2", flag, out, err)
		}
	}
	// PROXY protocol from curl; a plain request from an allowed source
	// is refused.
	if out, err := curlL7(t, "--haproxy-protocol", "http://"+ppAddr+"/"); err != nil || !strings.HasPrefix(out, "n") {
		t.Errorf("curl --haproxy-protocol: %q %v", out, err)
	}
	if out, err := curlL7(t, "http://"+ppAddr+"/"); err == nil {
		t.Errorf("plain request where PROXY is required succeeded: %q", out)
	}

	// A WebSocket that stays open across reloads while requests run.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wsc, _, err := websocket.Dial(ctx, "ws://"+h2cAddr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wsc.CloseNow()
	echo := func(msg string) {
		t.Helper()
		if err := wsc.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("websocket write: %v", err)
		}
		if _, got, err := wsc.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("websocket echo of %q: %q %v", msg, got, err)
		}
	}
	echo("before")

	var stop atomic.Bool
	var total, failed atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000 && !stop.Load(); i++ {
				resp, err := client.Get("http://" + h2cAddr + "/")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	// Reload under load, with a renewed certificate for a.test.
	writeCertFiles(t, dir, "a.test", 3)
	for i := range 3 {
		os.WriteFile(path, []byte(conf(fmt.Sprintf(", hash_key: \"header:X-Try-%d\"", i))), 0o600)
		p.cmd.Process.Signal(syscall.SIGHUP)
		if line := p.waitLog(t, "config reloaded|reload refused", 10*time.Second); strings.Contains(line, "refused") {
			t.Fatalf("reload %d refused: %s", i, line)
		}
		echo(fmt.Sprintf("after reload %d", i))
	}
	if got := serial(t, tlsAddr, "a.test"); got != 3 {
		t.Errorf("after reload a.test serves serial %d, want 3", got)
	}
	// Kill one nginx under load: idempotent requests go to the other.
	before := total.Load()
	syscall.Kill(-pid1, syscall.SIGKILL) // the process group: master and worker
	eventually(t, 5*time.Second, "the killed nginx to stop listening", func() bool {
		c, err := net.Dial("tcp", n1)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	eventually(t, 10*time.Second, "load after the kill", func() bool { return total.Load() > before+200 })
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during reloads and a backend kill", failed.Load(), total.Load())
	}
	echo("at the end")

	// Metrics after known traffic, and the access log of the TLS listener.
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`strata_l7_requests_total\{code="2xx",listener="plain",route="web"\} (\d+)`).FindSubmatch(metrics)
	if m == nil || string(m[1]) == "0" {
		t.Errorf("no 2xx count for the plain listener's web route in /metrics")
	}
	if !strings.Contains(string(metrics), `strata_l7_tunnels_active 1`) {
		t.Errorf("strata_l7_tunnels_active is not 1 with one WebSocket open")
	}
	eventually(t, 5*time.Second, "access log lines", func() bool {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), `"proto":"HTTP/2.0"`) && strings.Contains(string(data), `"listener":"tls"`)
	})
}
