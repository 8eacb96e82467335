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
	log *slog.Logger
	srv *server.BgpServer

	mu        sync.Mutex
	announced map[netip.Prefix]bool
	closed    bool
}

// Start starts a speaker for cfg and adds its peers; the sessions come up
// in the background, and routes announced before a session is established
// are sent once it is.
func Start(ctx context.Context, cfg *config.L4BGP, log *slog.Logger) (*Speaker, error) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "bgp")
	s := &Speaker{log: log, announced: map[netip.Prefix]bool{}}
	s.srv = server.NewBgpServer(server.LoggerOption(logAdapter{log}))
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
	for _, p := range cfg.Peers {
		peer, err := peerOf(cfg, p)
		if err != nil {
			s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
			return nil, err
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
			s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
			return nil, fmt.Errorf("bgp: adding peer %s: %w", p.Address, err)
		}
	}
	log.Info("bgp speaker started", "asn", cfg.ASN, "router_id", cfg.RouterID, "peers", len(cfg.Peers))
	return s, nil
}

func peerOf(cfg *config.L4BGP, p config.L4BGPPeer) (*api.Peer, error) {
	var password string
	if p.PasswordFile != "" {
		pw, err := config.ReadSecretFile(p.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("bgp: peer %s: %w", p.Address, err)
		}
		password = pw
	}
	hold := uint64(cfg.HoldTime.D() / time.Second)
	keep := uint64(cfg.Keepalive.D() / time.Second)
	return &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address,
			PeerAsn:         uint32(p.ASN),
			AuthPassword:    password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          hold,
			KeepaliveInterval: keep,
			// Retrying a lost session every second brings a rebooted
			// router's routes back quickly; the default is 120s.
			ConnectRetry: 1,
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
		// A peer gets the VIPs of its own address family only: the
		// next hop of a route is the node's address on the session,
		// and an IPv4 address is no next hop for an IPv6 VIP.
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family(!strings.Contains(p.Address, ":")), Enabled: true}}},
	}, nil
}

// Announce starts announcing p to every peer; announcing a prefix twice
// is one announcement.
func (s *Speaker) Announce(p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.announced[p] {
		return nil
	}
	if _, err := s.srv.AddPath(context.Background(), &api.AddPathRequest{Path: path(p)}); err != nil {
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
	if err := s.srv.DeletePath(context.Background(), &api.DeletePathRequest{Path: path(p)}); err != nil {
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
	return s.srv.StopBgp(ctx, &api.StopBgpRequest{})
}

// Logger returns the speaker's logger.
func (s *Speaker) Logger() *slog.Logger { return s.log }
