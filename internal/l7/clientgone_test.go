package l7

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// TestClientLeavesSlowBackend: a client that closes its connection while
// the backend is still thinking ends the backend's request too (the
// backend sees its connection close), and the request is counted as
// nginx's 499. A client that stays gets its answer, however slow.
func TestClientLeavesSlowBackend(t *testing.T) {
	old := clientCheckEvery
	clientCheckEvery = 50 * time.Millisecond
	t.Cleanup(func() { clientCheckEvery = old })
	arrived := make(chan struct{}, 4)
	abandoned := make(chan struct{}, 4)
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done(): // the proxy closed the connection
			abandoned <- struct{}{}
		case <-time.After(400 * time.Millisecond):
			io.WriteString(w, "slow answer")
		}
	}))
	reg := prometheus.NewRegistry()
	s := NewServer(Options{Logger: quietLogger(), Registry: reg})
	t.Cleanup(func() { shutdown(t, s) })
	cfg := &config.L7{Listeners: []config.Listener{{Name: "web", Listen: "127.0.0.1:0", Routes: []config.Route{{Name: "r", Pool: "p"}}}}}
	if err := s.Apply(cfg, map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0].String()

	// A client that stays gets the slow answer: checking on it costs it
	// nothing.
	if status, body, _ := get(t, http.DefaultClient, "http://"+addr+"/", ""); status != 200 || body != "slow answer" {
		t.Fatalf("patient client: %d %q", status, body)
	}
	<-arrived

	// A client that leaves.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the backend")
	}
	c.Close()
	select {
	case <-abandoned:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend kept working 5 s after its client left")
	}
	eventually(t, 5*time.Second, "the abandoned request counted as 499", func() bool {
		return metricValue(t, reg, "strata_l7_requests_total", map[string]string{"route": "r", "code": "4xx"}) == 1
	})
	if got := metricValue(t, reg, "strata_l7_requests_total", map[string]string{"route": "r", "code": "2xx"}); got != 1 {
		t.Errorf("2xx = %g, want 1 (the patient client)", got)
	}
}
