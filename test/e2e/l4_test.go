package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/testnet"
)

// startL4 runs the one-liner `strata l4 ARGS…` and waits until the
// virtual address accepts connections (or, for UDP, the admin API answers).
func startL4(t *testing.T, adminAddr string, args ...string) *exec.Cmd {
	t.Helper()
	var logs bytes.Buffer
	cmd := exec.Command(strataBin, append([]string{"l4", "--admin", adminAddr}, args...)...)
	cmd.Stderr = &lockedWriter{w: &logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("strata l4 log:\n%s", logs.String())
		}
	})
	// The admin API and the virtual service are separate listeners; the
	// test needs both bound before it sends anything.
	network, vip := "tcp", ""
	for i, a := range args {
		switch {
		case a == "--udp":
			network = "udp"
		case a == "--listen" && i+1 < len(args):
			vip = args[i+1]
		}
	}
	eventually(t, 10*time.Second, "strata l4 to bind its admin API and "+network+" "+vip, func() bool {
		return testnet.Bound("tcp", adminAddr) && (vip == "" || testnet.Bound(network, vip))
	})
	return cmd
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// echoBackend is testnet.NamedEcho: a TCP server that writes its name, then
// echoes until the client half-closes.
func echoBackend(t *testing.T, name string) string { return testnet.NamedEcho(t, name) }

func TestL4ManyShortConnectionsKeepTheirBytes(t *testing.T) {
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	vip, admin := freePort(t), freePort(t)
	startL4(t, admin, "--listen", vip, "--to", a, "--to", b, "--lb", "rr")
	const n, workers = 400, 8
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				payload := make([]byte, 4096+i)
				rand.Read(payload)
				c, err := net.DialTimeout("tcp", vip, 2*time.Second)
				if err != nil {
					errs <- err
					return
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				go func() {
					c.Write(payload)
					c.(*net.TCPConn).CloseWrite()
				}()
				got, err := io.ReadAll(c)
				c.Close()
				name, rest, _ := bytes.Cut(got, []byte("\n"))
				if err != nil || !bytes.Equal(rest, payload) {
					errs <- fmt.Errorf("connection %d: %d of %d bytes back intact, err %v", i, len(rest), len(payload), err)
					return
				}
				mu.Lock()
				seen[string(name)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if seen["a"] != n/2 || seen["b"] != n/2 {
		t.Errorf("rr spread %v, want %d each", seen, n/2)
	}
	// strata ctl services shows both backends with their connection counts.
	out, err := exec.Command(strataBin, "ctl", "services", "--admin", admin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), a) || !strings.Contains(string(out), b) || !strings.Contains(string(out), fmt.Sprint(n/2)) {
		t.Errorf("strata ctl services: %v\n%s", err, out)
	}
}

func TestL4Iperf3ThroughputAndTable(t *testing.T) {
	testnet.NeedTool(t, "iperf3", "iperf3")
	backend := freePort(t)
	_, port, _ := net.SplitHostPort(backend)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "iperf3", "-s", "-B", "127.0.0.1", "-p", port)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	vip, admin := freePort(t), freePort(t)
	startL4(t, admin, "--listen", vip, "--to", backend)
	eventually(t, 5*time.Second, "iperf3 -s to listen", func() bool {
		c, err := net.Dial("tcp", backend)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	host, vport, _ := net.SplitHostPort(vip)
	out, err := exec.CommandContext(ctx, "iperf3", "-c", host, "-p", vport, "-P", "4", "-t", "2", "-J").Output()
	if err != nil {
		t.Fatalf("iperf3 through strata: %v\n%s", err, out)
	}
	var res struct {
		End struct {
			SumSent     struct{ Bytes float64 } `json:"sum_sent"`
			SumReceived struct {
				Bytes         float64
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Error != "" {
		t.Fatalf("iperf3 result: %v %s", err, res.Error)
	}
	// iperf3's sender counts what it wrote into its socket when the clock
	// ran out, the receiver what it read by then, so the two differ by
	// what sat in socket buffers: up to four (the client's send, strata's
	// receive and send, the server's receive) per stream, tcp_wmem's and
	// tcp_rmem's maxima, autotuned (on a loaded machine, 22% of 457 MB
	// once). Byte-exact integrity is TestL4ManyShortConnectionsKeepTheirBytes's job.
	inFlight := 4 * 2 * (sysctlMax(t, "tcp_wmem") + sysctlMax(t, "tcp_rmem"))
	if res.End.SumReceived.Bytes == 0 || res.End.SumReceived.Bytes > res.End.SumSent.Bytes || res.End.SumSent.Bytes-res.End.SumReceived.Bytes > inFlight {
		t.Errorf("iperf3 sent %.0f bytes, received %.0f", res.End.SumSent.Bytes, res.End.SumReceived.Bytes)
	}
	t.Logf("iperf3 -P4 through strata l4: %.2f Gbit/s", res.End.SumReceived.BitsPerSecond/1e9)
	// The control connection and the four streams have left the table.
	eventually(t, 5*time.Second, "the connection table to empty", func() bool {
		out, err := exec.Command(strataBin, "ctl", "conns", "--admin", admin).Output()
		return err == nil && strings.Count(string(out), "\n") == 2 // title and header only
	})
}

func TestL4UDPToARealDNSServer(t *testing.T) {
	testnet.NeedTool(t, "dig", "dnsutils")
	testnet.NeedTool(t, "dnsperf", "dnsperf")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc("example.test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR("example.test. 60 IN A 192.0.2.7")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go srv.ActivateAndServe()
	defer srv.Shutdown()

	vip, admin := freePort(t), freePort(t)
	startL4(t, admin, "--udp", "--listen", vip, "--to", pc.LocalAddr().String())
	host, port, _ := net.SplitHostPort(vip)

	// A Go client first: it needs no tool and checks the answer itself.
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeA)
	var in *dns.Msg
	eventually(t, 5*time.Second, "an answer through strata", func() bool {
		in, _, err = c.Exchange(m, vip)
		return err == nil
	})
	if len(in.Answer) != 1 || !strings.Contains(in.Answer[0].String(), "192.0.2.7") {
		t.Fatalf("answer = %v", in.Answer)
	}
	out, err := exec.Command("dig", "+short", "+time=2", "+tries=2", "@"+host, "-p", port, "example.test", "A").Output()
	if err != nil || strings.TrimSpace(string(out)) != "192.0.2.7" {
		t.Errorf("dig through strata: %v %q", err, out)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	queries := filepath.Join(t.TempDir(), "queries")
	if err := os.WriteFile(queries, []byte("example.test A\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Bounded: two seconds, at most 20 queries in flight.
	cmd := exec.CommandContext(dctx, "dnsperf", "-s", host, "-p", port, "-d", queries, "-l", "2", "-c", "4", "-q", "20", "-t", "2")
	out, err = cmd.CombinedOutput()
	if err != nil || !regexp.MustCompile(`Queries completed:\s+[1-9]`).Match(out) || !regexp.MustCompile(`Queries lost:\s+0 `).Match(out) {
		t.Errorf("dnsperf through strata: %v\n%s", err, out)
	}
	out, err = exec.Command(strataBin, "ctl", "conns", "--admin", admin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "UDP") {
		t.Errorf("strata ctl conns shows no UDP session: %v\n%s", err, out)
	}
}

// sysctlMax is the maximum of net.ipv4's three-value buffer sysctl name.
func sysctlMax(t *testing.T, name string) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/" + name)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		t.Fatalf("%s: %q", name, b)
	}
	v, err := strconv.ParseFloat(f[2], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
