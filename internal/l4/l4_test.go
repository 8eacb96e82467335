package l4

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

func TestTCPRelaysBothWaysAndHalfCloses(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"))
	s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", nil))
	name, c := dialName(t, addrOf(t, s, "web"))
	defer c.Close()
	if name != "a" {
		t.Fatalf("backend = %q, want a", name)
	}
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite() // the backend echoes until it sees this FIN
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo differs: got %d bytes, want %d", len(got), len(payload))
	}
	eventually(t, "the connection to leave the table", func() bool { return len(s.Conns(0)) == 0 })
	st := s.Services()[0].Stats
	if st.InBytes != uint64(len(payload)) || st.OutBytes != uint64(len(payload)+2) {
		t.Errorf("bytes in/out = %d/%d, want %d/%d", st.InBytes, st.OutBytes, len(payload), len(payload)+2)
	}
}

func TestSchedulersOnRealConnections(t *testing.T) {
	tests := []struct {
		desc, sched string
		weights     []int
		want        map[string]int // connections per backend out of 12
	}{
		{desc: "rr takes turns", sched: "rr", weights: []int{1, 1, 1}, want: map[string]int{"a": 4, "b": 4, "c": 4}},
		{desc: "wrr follows weights", sched: "wrr", weights: []int{2, 1, 1}, want: map[string]int{"a": 6, "b": 3, "c": 3}},
		{desc: "fo sends all to the heaviest", sched: "fo", weights: []int{1, 3, 2}, want: map[string]int{"b": 12}},
		{desc: "sh keeps one client on one backend", sched: "sh", weights: []int{1, 1, 1}, want: nil},
		{desc: "mh keeps one client on one backend", sched: "mh", weights: []int{1, 1, 1}, want: nil},
		{desc: "lblc keeps one VIP on one backend", sched: "lblc", weights: []int{5, 5, 5}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			pool := newPool(t, "rr", namedBackend(t, "a"), namedBackend(t, "b"), namedBackend(t, "c"))
			for i, w := range tc.weights {
				pool.SetWeight("b"+string(rune('0'+i)), w)
			}
			s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", func(sc *config.L4Service) { sc.Scheduler = tc.sched }))
			got := map[string]int{}
			for range 12 {
				name, c := dialName(t, addrOf(t, s, "web"))
				c.Close()
				got[name]++
			}
			if tc.want == nil {
				if len(got) != 1 {
					t.Errorf("connections went to %v, want one backend", got)
				}
				return
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("connections per backend = %v, want %v", got, tc.want)
					break
				}
			}
		})
	}
}

func TestPersistenceSticksAndShowsInTable(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"), namedBackend(t, "b"))
	s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", func(sc *config.L4Service) {
		sc.Scheduler = "rr"
		sc.Persistence = &config.L4Persistence{Netmask: 24}
	}))
	first, c := dialName(t, addrOf(t, s, "web"))
	c.Close()
	for range 5 {
		name, c := dialName(t, addrOf(t, s, "web"))
		c.Close()
		if name != first {
			t.Fatalf("persistent client moved from %s to %s", first, name)
		}
	}
	p := s.Persistence()
	if len(p) != 1 || p[0].Client != "127.0.0.0/24" || p[0].ExpiresSeconds <= 0 {
		t.Fatalf("persistence table = %+v, want one /24 entry", p)
	}
}

func TestDrainKeepsEstablishedAndTakesNoNew(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"), namedBackend(t, "b"))
	s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", func(sc *config.L4Service) { sc.Scheduler = "rr" }))
	addr := addrOf(t, s, "web")
	held := map[string]net.Conn{}
	for len(held) < 2 {
		name, c := dialName(t, addr)
		if held[name] != nil {
			c.Close()
			continue
		}
		held[name] = c
	}
	if err := pool.SetState("b0", upstream.StateDraining); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		name, c := dialName(t, addr)
		c.Close()
		if name != "b" {
			t.Fatalf("a new connection went to draining backend %s", name)
		}
	}
	// The established connection to the draining backend still works.
	echo(t, held["a"], "still here")
	held["a"].Close()
	held["b"].Close()
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("writing: %v", err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(got) != msg {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}
}

func TestReloadKeepsEstablishedConnections(t *testing.T) {
	oldPool := newPool(t, "rr", namedBackend(t, "old"))
	newPoolB := newPool(t, "rr", namedBackend(t, "new"))
	pools := map[string]*upstream.Pool{"app": oldPool}
	s := startServer(t, pools, svcConfig("web", "tcp", nil))
	addr := addrOf(t, s, "web")
	name, held := dialName(t, addr)
	defer held.Close()
	if name != "old" {
		t.Fatalf("backend = %s, want old", name)
	}
	sc := svcConfig("web", "tcp", func(sc *config.L4Service) { sc.Listen = addr })
	if err := s.Apply(&config.L4{Services: []config.L4Service{sc}}, map[string]*upstream.Pool{"app": newPoolB}); err != nil {
		t.Fatal(err)
	}
	if got := s.Addrs("web"); len(got) != 1 || got[0].String() != addr {
		t.Fatalf("addresses after reload = %v, want the same socket %s", got, addr)
	}
	name, c := dialName(t, addr)
	c.Close()
	if name != "new" {
		t.Fatalf("a new connection after reload went to %s, want new", name)
	}
	echo(t, held, "survived the reload")
}

func TestFailedApplyChangesNothing(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"))
	s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", nil))
	addr := addrOf(t, s, "web")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := []config.L4Service{
		svcConfig("web", "tcp", func(sc *config.L4Service) { sc.Listen = addr }),
		svcConfig("other", "tcp", func(sc *config.L4Service) { sc.Listen = busy.Addr().String() }),
	}
	if err := s.Apply(&config.L4{Services: bad}, map[string]*upstream.Pool{"app": pool}); err == nil {
		t.Fatal("Apply on a port in use succeeded")
	}
	name, c := dialName(t, addr)
	c.Close()
	if name != "a" || len(s.Services()) != 1 {
		t.Fatalf("after a failed Apply: backend %q, %d services", name, len(s.Services()))
	}
}

func TestBackendKilledNewConnectionsGoElsewhere(t *testing.T) {
	deadAddr := testnet.RefusedAddr(t)
	pool := newPool(t, "rr", deadAddr, namedBackend(t, "alive"))
	s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", func(sc *config.L4Service) { sc.Scheduler = "rr" }))
	for range 6 {
		name, c := dialName(t, addrOf(t, s, "web"))
		c.Close()
		if name != "alive" {
			t.Fatalf("backend = %s, want alive", name)
		}
	}
	if d := s.Services()[0].Drops["dial"]; d == 0 {
		t.Error("refused dials were not counted")
	}
}

func TestSorryServerWhenNoBackendIsUp(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"))
	pool.SetState("b0", upstream.StateDown)
	sorry := namedBackend(t, "sorry")
	s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", func(sc *config.L4Service) { sc.SorryServer = sorry }))
	name, c := dialName(t, addrOf(t, s, "web"))
	c.Close()
	if name != "sorry" {
		t.Fatalf("backend = %s, want the sorry server", name)
	}
}

func TestProxyProtocolTellsTheBackendWhoConnected(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			headers := make(chan *proxyproto.Header, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				r := bufio.NewReader(c)
				h, err := proxyproto.Read(r)
				if err != nil {
					headers <- nil
					return
				}
				headers <- h
				io.WriteString(c, "ok\n")
			}()
			pool := newPool(t, "rr", ln.Addr().String())
			s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", func(sc *config.L4Service) { sc.ProxyProtocol = version }))
			name, c := dialName(t, addrOf(t, s, "web"))
			defer c.Close()
			h := <-headers
			if name != "ok" || h == nil {
				t.Fatalf("backend said %q, header %v", name, h)
			}
			src, dst, ok := h.TCPAddrs()
			if !ok || src.String() != c.LocalAddr().String() || dst.String() != c.RemoteAddr().String() {
				t.Errorf("header %v → %v, want %v → %v", src, dst, c.LocalAddr(), c.RemoteAddr())
			}
		})
	}
}

func TestDefences(t *testing.T) {
	tests := []struct {
		desc   string
		mod    func(*config.L4Service)
		reason string
	}{
		{desc: "accept rate per client", mod: func(sc *config.L4Service) { sc.AcceptRate, sc.AcceptBurst = 1, 1 }, reason: "rate"},
		{desc: "max concurrent connections", mod: func(sc *config.L4Service) { sc.MaxConns = 1 }, reason: "max_conns"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			pool := newPool(t, "rr", namedBackend(t, "a"))
			s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", tc.mod))
			addr := addrOf(t, s, "web")
			_, held := dialName(t, addr)
			defer held.Close()
			// The refusal is a reset, which may already fail the dial.
			if c, err := net.Dial("tcp", addr); err == nil {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := c.Read(make([]byte, 8)); err == nil {
					t.Fatalf("the second connection was served (%d bytes)", n)
				}
			}
			if got := s.Services()[0].Drops[tc.reason]; got != 1 {
				t.Errorf("drops[%s] = %d, want 1", tc.reason, got)
			}
		})
	}
}

func TestFirstByteTimeoutDropsSilentClients(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"))
	s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", func(sc *config.L4Service) {
		sc.FirstByteTimeout = config.Duration(100 * time.Millisecond)
	}))
	addr := addrOf(t, s, "web")
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 8)); err == nil {
		t.Fatal("a silent client was served")
	}
	talker, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	io.WriteString(talker, "hi\n")
	talker.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(talker)
	if line, err := r.ReadString('\n'); err != nil || line != "a\n" {
		t.Fatalf("a talking client got %q, %v", line, err)
	}
	if got := s.Services()[0].Drops["first_byte_timeout"]; got != 1 {
		t.Errorf("drops[first_byte_timeout] = %d, want 1", got)
	}
}

func TestIdleTimeoutClosesConnection(t *testing.T) {
	pool := newPool(t, "rr", namedBackend(t, "a"))
	s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("web", "tcp", func(sc *config.L4Service) {
		sc.Timeouts.TCP = config.Duration(200 * time.Millisecond)
	}))
	_, c := dialName(t, addrOf(t, s, "web"))
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("an idle connection stayed open past its timeout")
	}
	eventually(t, "the table to empty", func() bool { return len(s.Conns(0)) == 0 })
}

func TestUDPSessions(t *testing.T) {
	pool := newPool(t, "rr", udpEcho(t))
	s := startServer(t, map[string]*upstream.Pool{"app": pool}, svcConfig("dns", "udp", nil))
	addr := addrOf(t, s, "dns")
	for i := range 3 {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 2 {
			msg := []byte{byte('a' + i), byte('0' + j)}
			c.Write(msg)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "re:"+string(msg) {
				t.Fatalf("reply = %q, %v", buf[:n], err)
			}
		}
		c.Close()
	}
	conns := s.Conns(0)
	if len(conns) != 3 || conns[0].State != "UDP" {
		t.Fatalf("table = %+v, want three UDP sessions", conns)
	}
	// A datagram is counted after the write to the backend returns, which
	// may be after its reply is relayed: wait for the counters to settle.
	var st Stats
	ok := poll(func() bool {
		st = s.Services()[0].Stats
		return st.InPkts == 6 && st.OutPkts == 6 && st.InactiveConns == 3
	})
	if !ok {
		t.Errorf("stats = %+v, want 6 datagrams each way and 3 inactive sessions", st)
	}
}
