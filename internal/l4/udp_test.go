package l4

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// udpEcho is a UDP backend that answers every datagram with "re:" and
// the datagram.
func udpEcho(t *testing.T) string { return testnet.UDPEcho(t, "re:") }

// udpClient is a well-behaved client: one socket, one question at a time,
// each sent again after 200ms without an answer, as DNS clients do.
type udpClient struct {
	c       *net.UDPConn
	resends int
}

func newUDPClient(t *testing.T, from, to string) *udpClient {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, net.UDPAddrFromAddrPort(mustAddrPort(t, to)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{c: c}
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return ua.AddrPort()
}

// ask sends msg until its answer comes back, for at most 3 seconds.
func (u *udpClient) ask(msg string) error {
	want := []byte("re:" + msg)
	buf := make([]byte, 256)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := u.c.Write([]byte(msg)); err != nil {
			return err
		}
		u.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, err := u.c.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				return err
			}
			if bytes.Equal(buf[:n], want) {
				return nil
			}
			// An answer to an earlier copy of a question: read on.
		}
		u.resends++
	}
	return fmt.Errorf("no answer to %q in 3s", msg)
}

// flood sends one datagram from each of n fresh source ports of from,
// one socket at a time, so the flooder itself holds one descriptor.
func flood(t *testing.T, from, to string, n int) {
	t.Helper()
	dst := net.UDPAddrFromAddrPort(mustAddrPort(t, to))
	for i := range n {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, dst)
		if err != nil {
			t.Fatalf("flood socket %d: %v", i, err)
		}
		c.Write([]byte("flood"))
		c.Close()
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting descriptors: %v", err)
	}
	return len(ents)
}

// TestUDPFloodBounded floods a UDP service with datagrams from thousands
// of source ports, each a new session, while a well-behaved client keeps
// asking: max_conns bounds the sessions and so the sockets they hold,
// accept_rate bounds what one address may open, the refusals are counted,
// and the well-behaved client is answered throughout.
func TestUDPFloodBounded(t *testing.T) {
	const ports = 3000
	tests := []struct {
		desc   string
		mod    func(*config.L4Service)
		reason string
		// most is the bound on the flood's sessions, given how long the
		// flood took.
		most func(elapsed time.Duration) int64
	}{
		{
			desc:   "max_conns",
			mod:    func(sc *config.L4Service) { sc.MaxConns, sc.AcceptRate, sc.AcceptBurst = 300, 1e6, 1e6 },
			reason: "max_conns",
			most:   func(time.Duration) int64 { return 300 },
		},
		{
			desc:   "accept_rate",
			mod:    func(sc *config.L4Service) { sc.AcceptRate, sc.AcceptBurst = 50, 50 },
			reason: "rate",
			// The well-behaved client's session plus a full bucket and
			// what refills while the flood runs, and a second more for the
			// datagrams still queued when the flooder stops.
			most: func(d time.Duration) int64 { return 1 + 50 + int64(50*(d.Seconds()+1)) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			pool := newPool(t, "rr", udpEcho(t))
			s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("dns", "udp", tc.mod))
			addr := addrOf(t, s, "dns")
			good := newUDPClient(t, "127.0.0.1", addr)
			if err := good.ask("hello"); err != nil {
				t.Fatal(err)
			}
			fdBase := openFDs(t)

			var maxSessions, maxFDs atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // samples the sessions and descriptors
				defer wg.Done()
				for {
					if n := s.Services()[0].Stats.InactiveConns; n > maxSessions.Load() {
						maxSessions.Store(n)
					}
					if n := int64(openFDs(t)); n > maxFDs.Load() {
						maxFDs.Store(n)
					}
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			var asked int
			var askErr error
			go func() { // the well-behaved client, throughout the flood
				defer wg.Done()
				for ; ; asked++ {
					if askErr = good.ask(fmt.Sprint("q", asked)); askErr != nil {
						return
					}
					select {
					case <-stop:
						return
					default:
					}
				}
			}()
			start := time.Now()
			flood(t, "127.0.0.2", addr, ports)
			elapsed := time.Since(start)
			close(stop)
			wg.Wait()

			if askErr != nil {
				t.Fatalf("the well-behaved client during the flood, question %d: %v", asked, askErr)
			}
			st := s.Services()[0]
			most := tc.most(elapsed)
			if n := st.Stats.InactiveConns; n > most || maxSessions.Load() > most {
				t.Errorf("sessions: %d now, %d at most during the flood; want at most %d", n, maxSessions.Load(), most)
			}
			// Each session holds one socket; the test's own sockets and
			// the runtime's come and go within the slack.
			if grew := maxFDs.Load() - int64(fdBase); grew > most+20 {
				t.Errorf("descriptors grew by %d during the flood, past %d sessions", grew, most)
			}
			if st.Drops[tc.reason] == 0 {
				t.Errorf("drops[%s] = 0 after a flood of %d source ports", tc.reason, ports)
			}
			if tc.reason == "rate" {
				// The flooder could not fill the table: a new client
				// from another address is served.
				if err := newUDPClient(t, "127.0.0.3", addr).ask("new"); err != nil {
					t.Errorf("a new client after the flood: %v", err)
				}
			}
			t.Logf("%d ports in %v: %d sessions at most, descriptors +%d, drops[%s] = %d; the well-behaved client asked %d questions, %d sent again",
				ports, elapsed.Round(time.Millisecond), maxSessions.Load(), maxFDs.Load()-int64(fdBase), tc.reason, st.Drops[tc.reason], asked+1, good.resends)
		})
	}
}

// TestDepartedBackendsLeaveNoCounters: a pool whose backends churn, as a
// registry-fed one does, leaves no per-backend counters behind once its
// backends have gone and hold no connection.
func TestDepartedBackendsLeaveNoCounters(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"))
	s, err := NewServer(Options{Logger: slog.New(slog.DiscardHandler), EstimateEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&config.L4{Services: []config.L4Service{svcConfig("web", "tcp", nil)}}, map[string]*upstream.Pool{"app": pool}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	dests := func() int {
		n := 0
		(*s.services.Load())[0].counters.dests.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	_, held := dialName(t, addrOf(t, s, "web")) // a connection to b0, which leaves too
	specs := make([]upstream.Spec, 10000)
	for i := range specs {
		specs[i] = upstream.Spec{Name: fmt.Sprint("r", i), Addr: fmt.Sprintf("127.0.0.1:%d", 10000+i), Weight: 1}
	}
	if err := pool.Update(specs); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Services()[0].Backends); n != 10000 { // makes their counters
		t.Fatalf("%d backends listed, want 10000", n)
	}
	if err := pool.Update(specs[:1]); err != nil {
		t.Fatal(err)
	}
	// b0 keeps its counters while its connection lives.
	eventually(t, "the departed backends' counters to go", func() bool { return dests() == 2 })
	held.Close()
	eventually(t, "the last departed backend's counters to go", func() bool { return dests() == 1 })
}
