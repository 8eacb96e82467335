package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/strata-lb/strata/internal/config"
)

// router is a second GoBGP server standing for the router: it listens on
// a free loopback port and waits, passive, for the speaker to dial in.
// (The FRR test in test/e2e is the router of record; this one needs no
// root.)
type router struct {
	srv  *server.BgpServer
	port int
}

func newRouter(t *testing.T) *router {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &router{srv: server.NewBgpServer(server.LoggerOption(logAdapter{l: discard()})), port: port}
	go r.srv.Serve()
	ctx := context.Background()
	if err := r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65000, RouterId: "192.0.2.254", ListenPort: int32(port), ListenAddresses: []string{"127.0.0.1", "::1"},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.srv.StopBgp(context.Background(), &api.StopBgpRequest{}) })
	for _, a := range []string{"127.0.0.1", "::1"} {
		if err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: a, PeerAsn: 65001},
			Transport: &api.Transport{PassiveMode: true},
			Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 3, KeepaliveInterval: 1}},
			AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family(a != "::1"), Enabled: true}}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// routes returns the prefixes in the router's table, with their next
// hops.
func (r *router) routes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v4 := range []bool{true, false} {
		err := r.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: family(v4)}, func(d *api.Destination) {
			for _, p := range d.Paths {
				for _, a := range p.Pattrs {
					var nh api.NextHopAttribute
					var mp api.MpReachNLRIAttribute
					if a.UnmarshalTo(&nh) == nil {
						out[d.Prefix] = nh.NextHop
					} else if a.UnmarshalTo(&mp) == nil && len(mp.NextHops) > 0 {
						out[d.Prefix] = mp.NextHops[0]
					}
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testConfig(port int) *config.L4BGP {
	return &config.L4BGP{
		ASN: 65001, RouterID: "192.0.2.1",
		Peers:    []config.L4BGPPeer{{Address: "127.0.0.1", ASN: 65000, Port: port}, {Address: "::1", ASN: 65000, Port: port}},
		HoldTime: config.DefaultL4BGPHoldTime, Keepalive: config.DefaultL4BGPKeepalive,
	}
}

// TestAnnounceWithdraw: a prefix announced reaches the router with the
// speaker's own address as next hop, and leaves it when withdrawn; the
// peer's state follows the session.
func TestAnnounceWithdraw(t *testing.T) {
	r := newRouter(t)
	s, err := Start(context.Background(), testConfig(r.port), discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	vip := netip.MustParsePrefix("10.9.9.9/32")
	if err := s.Announce(vip); err != nil {
		t.Fatal(err)
	}
	if err := s.Announce(vip); err != nil { // twice is once
		t.Fatal(err)
	}
	eventually(t, "the sessions to come up", func() bool {
		p := s.Peers()
		return len(p) == 2 && p[0].State == "established" && p[1].State == "established" &&
			p[0].Address == "127.0.0.1" && p[1].Address == "::1" && p[0].ASN == 65000
	})
	eventually(t, "the router to learn the VIP", func() bool { return r.routes(t)["10.9.9.9/32"] == "127.0.0.1" })
	if got := s.Announced(); !slices.Equal(got, []netip.Prefix{vip}) {
		t.Errorf("Announced() = %v, want [%v]", got, vip)
	}
	// An IPv6 VIP goes as a /128 to the IPv6 peer, with the node's IPv6
	// address as its next hop.
	vip6 := netip.MustParsePrefix("2001:db8::9/128")
	if err := s.Announce(vip6); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the router to learn the IPv6 VIP", func() bool { return r.routes(t)["2001:db8::9/128"] == "::1" })
	if err := s.Withdraw(vip6); err != nil {
		t.Fatal(err)
	}
	if err := s.Withdraw(vip); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the router to forget the VIPs", func() bool {
		rs := r.routes(t)
		_, ok := rs["10.9.9.9/32"]
		_, ok6 := rs["2001:db8::9/128"]
		return !ok && !ok6
	})
	if got := s.Announced(); len(got) != 0 {
		t.Errorf("Announced() after Withdraw = %v, want none", got)
	}
	// Close ends the session with a Cease: the router sees it go.
	if err := s.Announce(vip); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the router to learn the VIP again", func() bool { return r.routes(t)["10.9.9.9/32"] != "" })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the router to drop the closed speaker's route", func() bool { _, ok := r.routes(t)["10.9.9.9/32"]; return !ok })
}

// TestPasswordFileRefused: a world-readable password file stops the
// speaker from starting, as every secret file of strata does.
func TestPasswordFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte("s3cret-bgp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(179)
	cfg.Peers[0].PasswordFile = path
	if s, err := Start(context.Background(), cfg, discard()); err == nil {
		s.Close(context.Background())
		t.Fatal("a world-readable password file was accepted")
	} else if !strings.Contains(err.Error(), "world-readable") {
		t.Errorf("error = %v, want it to say the file is world-readable", err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// routeAttrs returns the MED, the AS path and the communities of the
// router's route to prefix; ok is false when it has none.
func (r *router) routeAttrs(t *testing.T, prefix string) (med uint32, asPath []uint32, comms []uint32, ok bool) {
	t.Helper()
	err := r.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: family(true)}, func(d *api.Destination) {
		if d.Prefix != prefix || len(d.Paths) == 0 {
			return
		}
		ok = true
		for _, a := range d.Paths[0].Pattrs {
			var m api.MultiExitDiscAttribute
			var ap api.AsPathAttribute
			var c api.CommunitiesAttribute
			switch {
			case a.UnmarshalTo(&m) == nil:
				med = m.Med
			case a.UnmarshalTo(&ap) == nil:
				for _, s := range ap.Segments {
					asPath = append(asPath, s.Numbers...)
				}
			case a.UnmarshalTo(&c) == nil:
				comms = c.Communities
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return
}

// TestRouteAttributes: med, as_path_prepend and communities reach the
// router on the route, and a change of them replaces the route there
// without a new session.
func TestRouteAttributes(t *testing.T) {
	r := newRouter(t)
	cfg := testConfig(r.port)
	cfg.Peers = cfg.Peers[:1]
	cfg.MED, cfg.ASPathPrepend, cfg.Communities = 200, 2, []string{"65001:100", "no-export"}
	s, err := Start(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Announce(netip.MustParsePrefix("10.9.9.9/32")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the router to learn the VIP with its attributes", func() bool {
		med, path, comms, ok := r.routeAttrs(t, "10.9.9.9/32")
		// GoBGP adds the node's ASN once more toward an eBGP peer.
		return ok && med == 200 && slices.Equal(path, []uint32{65001, 65001, 65001}) && slices.Equal(comms, []uint32{65001<<16 | 100, 0xFFFFFF01})
	})
	flaps := s.Peers()[0].Flaps
	cfg.MED, cfg.ASPathPrepend, cfg.Communities = 10, 0, nil
	if err := s.SetAttrs(AttrsOf(cfg)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the router to see the new attributes", func() bool {
		med, path, comms, ok := r.routeAttrs(t, "10.9.9.9/32")
		return ok && med == 10 && slices.Equal(path, []uint32{65001}) && len(comms) == 0
	})
	if p := s.Peers()[0]; p.State != "established" || p.Flaps != flaps {
		t.Errorf("changing the attributes touched the session: %+v", p)
	}
}

// TestSetPeers: a reload's peer list adds and removes sessions and keeps
// the ones that did not change; each peer's transitions are recorded,
// with GoBGP's reason when a session falls.
func TestSetPeers(t *testing.T) {
	r := newRouter(t)
	cfg := testConfig(r.port)
	both := cfg.Peers
	cfg.Peers = both[:1]
	s, err := Start(context.Background(), cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	eventually(t, "the first session", func() bool { p := s.Peers(); return len(p) == 1 && p[0].State == "established" })
	first := s.Peers()[0]
	if first.LastTransition == nil || first.LastTransition.To != "established" || first.LastTransition.Reason != "session established" || first.Since.IsZero() {
		t.Errorf("the established session's transition = %+v, since %v", first.LastTransition, first.Since)
	}
	cfg.Peers = both
	if err := s.SetPeers(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both sessions", func() bool {
		p := s.Peers()
		return len(p) == 2 && p[0].State == "established" && p[1].State == "established"
	})
	if p := s.Peers()[0]; !p.Since.Equal(first.Since) {
		t.Errorf("adding a peer restarted the session of the other: since %v, was %v", p.Since, first.Since)
	}
	cfg.Peers = both[1:]
	if err := s.SetPeers(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if p := s.Peers(); len(p) != 1 || p[0].Address != "::1" {
		t.Errorf("after removing 127.0.0.1 the peers are %+v", p)
	}
	// The router ends the session: the node records the fall and why.
	if err := r.srv.DisablePeer(context.Background(), &api.DisablePeerRequest{Address: "::1", Communication: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fall from established to be recorded", func() bool {
		p := s.Peers()
		return len(p) == 1 && p[0].LastTransition != nil && p[0].LastTransition.From == "established"
	})
	tr := s.Peers()[0].LastTransition
	if !strings.Contains(tr.Reason, "notification-received") {
		t.Errorf("the fall's reason = %q, want GoBGP's notification-received", tr.Reason)
	}
	// A password file that cannot be read changes nothing.
	cfg.Peers = []config.L4BGPPeer{{Address: "127.0.0.1", ASN: 65000, Port: r.port, PasswordFile: "/nonexistent/pw"}}
	if err := s.SetPeers(context.Background(), cfg); err == nil {
		t.Error("a missing password file was accepted")
	}
	if p := s.Peers(); len(p) != 1 || p[0].Address != "::1" {
		t.Errorf("a failed SetPeers changed the peers: %+v", p)
	}
}

// TestProbeMD5: the kernel this runs on signs TCP segments (the FRR test
// in test/e2e runs an MD5 session on it), so the probe passes; a kernel
// without it would refuse every password_file with a clear error.
func TestProbeMD5(t *testing.T) {
	if err := probeMD5(); err != nil {
		t.Fatalf("probeMD5: %v", err)
	}
}
