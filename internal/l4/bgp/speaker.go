package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/strata-lb/strata/internal/config"
)

// Announcer is what the l4 server needs of a speaker.
type Announcer interface {
	Announce(p netip.Prefix) error
	Withdraw(p netip.Prefix) error
}

// Speaker is one embedded BGP speaker and the prefixes it announces.
type Speaker struct {
	log     *slog.Logger
	srv     *server.BgpServer
	stopW   context.CancelFunc // ends the watch of the sessions
	tracker *tracker

	mu        sync.Mutex
	announced map[netip.Prefix]bool
	attrs     Attrs
	peers     map[string]peerConf // by address, as added to GoBGP
	closed    bool
}

// peerConf is what a session was started with: a change to any of it
// takes a new session.
type peerConf struct {
	cfg       config.L4BGPPeer
	password  string
	hold      uint64
	keepalive uint64
}

// Start starts a speaker for cfg and adds its peers; the sessions come up
// in the background, and routes announced before a session is established
// are sent once it is.
func Start(ctx context.Context, cfg *config.L4BGP, log *slog.Logger) (*Speaker, error) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "bgp")
	s := &Speaker{log: log, announced: map[netip.Prefix]bool{}, attrs: AttrsOf(cfg), peers: map[string]peerConf{}, tracker: newTracker()}
	s.srv = server.NewBgpServer(server.LoggerOption(logAdapter{l: log, down: s.tracker.down}))
	// GoBGP's Serve has no way to stop: its goroutine lives as long as
	// the process, which is as long as the l4 role keeps one speaker.
	go s.srv.Serve()
	listen := int32(cfg.ListenPort)
	if listen == 0 {
		listen = -1 // GoBGP's "do not listen"
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        uint32(cfg.ASN),
		RouterId:   cfg.RouterID,
		ListenPort: listen,
	}}); err != nil {
		return nil, fmt.Errorf("bgp: starting: %w", err)
	}
	// The sessions' changes are watched from the start, so the first
	// transition of every peer is seen.
	wctx, cancel := context.WithCancel(context.Background())
	s.stopW = cancel
	if err := s.srv.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, s.tracker.event); err != nil {
		cancel()
		s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return nil, fmt.Errorf("bgp: watching the sessions: %w", err)
	}
	if err := s.SetPeers(ctx, cfg); err != nil {
		cancel()
		s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return nil, err
	}
	log.Info("bgp speaker started", "asn", cfg.ASN, "router_id", cfg.RouterID, "peers", len(cfg.Peers))
	return s, nil
}

func confOf(cfg *config.L4BGP, p config.L4BGPPeer) (peerConf, error) {
	c := peerConf{cfg: p, hold: uint64(cfg.HoldTime.D() / time.Second), keepalive: uint64(cfg.Keepalive.D() / time.Second)}
	if p.PasswordFile != "" {
		pw, err := config.ReadSecretFile(p.PasswordFile)
		if err != nil {
			return c, fmt.Errorf("bgp: peer %s: %w", p.Address, err)
		}
		c.password = pw
		if err := probeMD5(); err != nil {
			return c, fmt.Errorf("bgp: peer %s: password_file: %w", p.Address, err)
		}
	}
	return c, nil
}

func (c peerConf) peer() *api.Peer {
	p := c.cfg
	return &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address,
			PeerAsn:         uint32(p.ASN),
			AuthPassword:    c.password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          c.hold,
			KeepaliveInterval: c.keepalive,
			// Retrying a lost session every second brings a rebooted
			// router's routes back quickly; the default is 120s.
			ConnectRetry: 1,
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
		// A peer gets the VIPs of its own address family only: the
		// next hop of a route is the node's address on the session,
		// and an IPv4 address is no next hop for an IPv6 VIP.
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family(!strings.Contains(p.Address, ":")), Enabled: true}}},
	}
}

// SetPeers makes the speaker's sessions those of cfg.Peers: a new peer
// gets a session, a peer no longer listed loses its own, and a peer
// whose asn, port, password or the timers changed gets a new session
// (the old one ends with a Cease). Peers that did not change keep their
// sessions. Every password file is read before any session changes, so
// a bad one changes nothing.
func (s *Speaker) SetPeers(ctx context.Context, cfg *config.L4BGP) error {
	want := map[string]peerConf{}
	for _, p := range cfg.Peers {
		c, err := confOf(cfg, p)
		if err != nil {
			return err
		}
		want[p.Address] = c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	var errs []string
	for addr, old := range s.peers {
		if c, ok := want[addr]; ok && c == old {
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
			errs = append(errs, fmt.Sprintf("removing peer %s: %v", addr, err))
			continue
		}
		delete(s.peers, addr)
		s.tracker.forget(addr)
		if _, ok := want[addr]; ok {
			s.log.Info("peer changed: starting a new session", "peer", addr)
		} else {
			s.log.Info("peer removed", "peer", addr)
		}
	}
	for _, p := range cfg.Peers {
		if _, ok := s.peers[p.Address]; ok {
			continue
		}
		c := want[p.Address]
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: c.peer()}); err != nil {
			errs = append(errs, fmt.Sprintf("adding peer %s: %v", p.Address, err))
			continue
		}
		s.peers[p.Address] = c
		s.tracker.add(p.Address, uint32(p.ASN))
	}
	if len(errs) > 0 {
		return fmt.Errorf("bgp: %s", strings.Join(errs, "; "))
	}
	return nil
}

// SetAttrs changes the attributes of every route: the routes announced
// now are sent again with them, which replaces them at the peers.
func (s *Speaker) SetAttrs(at Attrs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.attrs.Equal(at) {
		return nil
	}
	s.attrs = at
	var errs []string
	for p := range s.announced {
		if _, err := s.srv.AddPath(context.Background(), &api.AddPathRequest{Path: path(p, at)}); err != nil {
			errs = append(errs, fmt.Sprintf("announcing %s again: %v", p, err))
		}
	}
	s.log.Info("route attributes changed", "med", at.MED, "as_path_prepend", at.Prepend, "communities", len(at.Communities))
	if len(errs) > 0 {
		return fmt.Errorf("bgp: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Announce starts announcing p to every peer; announcing a prefix twice
// is one announcement.
func (s *Speaker) Announce(p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.announced[p] {
		return nil
	}
	if _, err := s.srv.AddPath(context.Background(), &api.AddPathRequest{Path: path(p, s.attrs)}); err != nil {
		return fmt.Errorf("bgp: announcing %s: %w", p, err)
	}
	s.announced[p] = true
	s.log.Info("announced", "prefix", p.String())
	return nil
}

// Withdraw stops announcing p.
func (s *Speaker) Withdraw(p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.announced[p] {
		return nil
	}
	if err := s.srv.DeletePath(context.Background(), &api.DeletePathRequest{Path: path(p, s.attrs)}); err != nil {
		return fmt.Errorf("bgp: withdrawing %s: %w", p, err)
	}
	delete(s.announced, p)
	s.log.Info("withdrew", "prefix", p.String())
	return nil
}

// Announced returns the prefixes announced now, sorted.
func (s *Speaker) Announced() []netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.Prefix, 0, len(s.announced))
	for p := range s.announced {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Close withdraws every prefix, ends the sessions with a Cease
// notification and stops listening.
func (s *Speaker) Close(ctx context.Context) error {
	for _, p := range s.Announced() {
		if err := s.Withdraw(p); err != nil {
			s.log.Warn("withdrawing at close", "err", err)
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stopW()
	return s.srv.StopBgp(ctx, &api.StopBgpRequest{})
}

// Logger returns the speaker's logger.
func (s *Speaker) Logger() *slog.Logger { return s.log }
