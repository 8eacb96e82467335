package xdp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// Ports every real server listens on: DR and tunnel cannot change the
// destination port, so a real serves each VIP's port itself.
const (
	httpPort = 80
	echoPort = 7000
)

// serveReal starts the real servers of one real in its namespace: HTTP on
// :80 (its name at /, n pseudo-random bytes at /blob?n=) and a named echo
// on :7000 (its name and a line end, then every byte echoed).
func serveReal(t *testing.T, ns *testnet.Netns, name string) {
	t.Helper()
	var hl, el net.Listener
	if err := ns.Do(func() (err error) {
		if hl, err = net.Listen("tcp", fmt.Sprintf(":%d", httpPort)); err != nil {
			return err
		}
		el, err = net.Listen("tcp", fmt.Sprintf(":%d", echoPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	mux.HandleFunc("/blob", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Write(blob(n))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(hl)
	t.Cleanup(func() { srv.Close() })
	t.Cleanup(func() { el.Close() })
	go testnet.ServeNamedEcho(el, name)
}

// blob is n bytes of a fixed pseudo-random sequence, so that a download
// can be checked byte for byte.
func blob(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// echoConn is a client connection to the echo service through the VIP.
type echoConn struct {
	net.Conn
	r    *bufio.Reader
	real string
}

// dialEcho connects from the client namespace and reads the real's name.
func dialEcho(ns *testnet.Netns, addr string) (*echoConn, error) {
	var c net.Conn
	if err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}); err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading the real's name: %w", err)
	}
	return &echoConn{Conn: c, r: r, real: strings.TrimSpace(name)}, nil
}

// roundTrip sends payload and checks that exactly it comes back.
func (e *echoConn) roundTrip(payload []byte) error {
	e.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := e.Write(payload)
		errc <- err
	}()
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(e.r, got); err != nil {
		return fmt.Errorf("echo from %s: %w", e.real, err)
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("echo from %s differs from what was sent", e.real)
	}
	return nil
}

// setPool replaces the pool's backends: name → weight, addresses from
// addrs.
func setPool(t *testing.T, p *upstream.Pool, addrs map[string]string, weights map[string]int) {
	t.Helper()
	var specs []upstream.Spec
	for name, w := range weights {
		specs = append(specs, upstream.Spec{Name: name, Addr: addrs[name], Weight: w})
	}
	if err := p.Update(specs); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
