package l4

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// bgpConfig is an l4 section with one service on 127.0.0.1 and a speaker
// whose only peer refuses connections: the routes are kept in the
// speaker's table, which is what Announced reports, without a router.
func bgpConfig(t *testing.T, peers ...string) *config.L4 {
	t.Helper()
	off := false
	b := &config.L4BGP{ASN: 65001, RouterID: "192.0.2.1", HoldTime: config.DefaultL4BGPHoldTime,
		Keepalive: config.DefaultL4BGPKeepalive, Lameduck: config.Duration(10 * time.Millisecond), VIPOnLo: &off}
	for _, p := range peers {
		b.Peers = append(b.Peers, config.L4BGPPeer{Address: p, ASN: 65000, Port: 1})
	}
	return &config.L4{Services: []config.L4Service{svcConfig("echo", "tcp", nil)}, BGP: b}
}

// TestDrainAndReload: a drained node withdraws its VIP and keeps
// serving; undrained, it announces again. A reload changes the peers and
// the route attributes live, and names each field it cannot apply
// without a restart.
func TestDrainAndReload(t *testing.T) {
	logs := &lockedBuf{}
	s, err := NewServer(Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	pools := map[string]*upstream.Pool{"app": newPool(t, "rr", namedBackend(t, "one"))}
	cfg := bgpConfig(t, "127.0.0.2")
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	vip := []string{"127.0.0.1/32"}
	eventually(t, "the VIP to be announced", func() bool { return slices.Equal(s.BGPStatus().Announced, vip) })

	if err := s.DrainNode(true); err != nil {
		t.Fatal(err)
	}
	st := s.BGPStatus()
	if !st.Drained || st.DrainedAt == nil || len(st.Announced) != 0 || !slices.Equal(st.VIPs, vip) {
		t.Errorf("drained: %+v, want drained with nothing announced and the VIP still listed", st)
	}
	// A reload does not undo the drain: its sync, which ran before
	// Apply returned, announced nothing.
	if err := s.Apply(cfg, pools); err != nil {
		t.Fatal(err)
	}
	if got := s.BGPStatus().Announced; len(got) != 0 {
		t.Errorf("a drained node announced %v after a reload", got)
	}
	// Drained, the node still serves.
	if name, c := dialName(t, addrOf(t, s, "echo")); name != "one" {
		t.Errorf("the drained node answered %q, want one", name)
	} else {
		c.Close()
	}
	if err := s.DrainNode(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the undrained VIP to be announced", func() bool { return slices.Equal(s.BGPStatus().Announced, vip) })

	next := bgpConfig(t, "127.0.0.3", "127.0.0.4")
	next.BGP.ASN, next.BGP.RouterID = 65009, "192.0.2.9"
	next.BGP.MED, next.BGP.ASPathPrepend, next.BGP.Communities = 50, 1, []string{"65001:7"}
	if err := s.Apply(next, pools); err != nil {
		t.Fatal(err)
	}
	st = s.BGPStatus()
	var addrs []string
	for _, p := range st.Peers {
		addrs = append(addrs, p.Address)
	}
	if !slices.Equal(addrs, []string{"127.0.0.3", "127.0.0.4"}) {
		t.Errorf("after the reload the peers are %v, want 127.0.0.3 and 127.0.0.4", addrs)
	}
	if st.MED != 50 || st.ASPathPrepend != 1 || !slices.Equal(st.Communities, []string{"65001:7"}) {
		t.Errorf("after the reload the route attributes are med %d, prepend %d, communities %v", st.MED, st.ASPathPrepend, st.Communities)
	}
	if st.ASN != 65001 || st.RouterID != "192.0.2.1" {
		t.Errorf("the speaker's identity changed without a restart: asn %d, router_id %s", st.ASN, st.RouterID)
	}
	for _, field := range []string{"field=l4.bgp.asn", "field=l4.bgp.router_id"} {
		if !strings.Contains(logs.String(), field) {
			t.Errorf("no restart warning names %s:\n%s", field, logs.String())
		}
	}
	if strings.Contains(logs.String(), "field=l4.bgp.listen_port") {
		t.Error("a warning names listen_port, which did not change")
	}
}

// TestDrainWithoutBGP: a node without l4.bgp has nothing to drain, and
// says so.
func TestDrainWithoutBGP(t *testing.T) {
	s := startServer(t, map[string]*upstream.Pool{"app": newPool(t, "rr", testnet.RefusedAddr(t))}, svcConfig("echo", "tcp", nil))
	if err := s.DrainNode(true); err != ErrNoBGP {
		t.Errorf("DrainNode without l4.bgp = %v, want ErrNoBGP", err)
	}
	if st := s.BGPStatus(); st.Enabled || st.Drained {
		t.Errorf("BGPStatus without l4.bgp = %+v", st)
	}
}
