package registry

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"sync"

	"github.com/strata-lb/strata/internal/config"
)

// Server runs a Node from the registry section of the config, for the
// supervisor: the first Apply starts the node, later ones change what can
// change while it runs (tokens, and the token files, read again), and a config without the section stops
// it.
type Server struct {
	log *slog.Logger

	mu   sync.Mutex
	node *Node
	cur  *config.Registry
}

// NewServer makes a server that is not running yet.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{log: log}
}

// OptionsFrom turns the config section into node options, reading the
// secret files it names (token_file; they are read again on every reload,
// so a rotated token takes effect with a reload) and Raft's TLS files.
func OptionsFrom(c *config.Registry, log *slog.Logger) (Options, error) {
	o := Options{
		RaftAddr:     c.RaftListen,
		RaftInsecure: c.Raft.Insecure,
		Advertise:    c.Advertise,
		DataDir:      c.Data,
		Join:         c.Join,
		AdminToken:   c.Token,
		Limits: Limits{
			InstancesPerService:   c.Limits.InstancesPerService,
			InstancesPerNamespace: c.Limits.InstancesPerNamespace,
			ServicesPerNamespace:  c.Limits.ServicesPerNamespace,
			MetadataEntries:       c.Limits.MetadataEntries,
			MetadataBytes:         c.Limits.MetadataBytes,
		},
		Config: ConfigOptions{
			History:         c.Config.History,
			MaxContentBytes: c.Config.MaxContentBytes,
			MaxConfigs:      c.Config.MaxConfigs,
		},
		Liveness: LivenessOptions{
			Interval:       c.HeartbeatInterval.D(),
			UnhealthyAfter: c.UnhealthyAfter.D(),
			RemoveAfter:    c.RemoveAfter.D(),
		},
		MaxWait:            c.MaxWait.D(),
		MaxParked:          c.MaxWatchers,
		MaxParkedPerClient: c.MaxWatchersPerClient,
		WatchWriteTimeout:  c.WatchWriteTimeout.D(),
		Checks:             CheckOptions{Check: c.Check},
		Logger:             log,
	}
	if c.NacosGRPC.Listen != config.RegistryNacosGRPCOff {
		o.NacosGRPC = c.NacosGRPC.Listen
		o.NacosGRPCOptional = c.NacosGRPC.Listen == config.DefaultRegistryNacosGRPCListen(c.Listen)
	}
	if o.DataDir == "memory" {
		o.DataDir = ""
	}
	if c.TokenFile != "" {
		t, err := config.ReadSecretFile(c.TokenFile)
		if err != nil {
			return o, fmt.Errorf("registry.token_file: %w", err)
		}
		o.AdminToken = t
	}
	if len(c.Namespaces) > 0 {
		o.NamespaceTokens = map[string]string{}
		for i, ns := range c.Namespaces {
			t := ns.Token
			if ns.TokenFile != "" {
				var err error
				if t, err = config.ReadSecretFile(ns.TokenFile); err != nil {
					return o, fmt.Errorf("registry.namespaces[%d].token_file: %w", i, err)
				}
			}
			o.NamespaceTokens[ns.Name] = t
		}
	}
	if c.Raft.TLS != nil {
		t, err := RaftTLSConfig(c.Raft.TLS)
		if err != nil {
			return o, err
		}
		o.RaftTLS = t
	}
	return o, nil
}

// restartOnly blanks what a reload may change, so what remains must stay.
func restartOnly(c *config.Registry) config.Registry {
	x := *c
	x.Token, x.TokenFile, x.Namespaces = "", "", nil
	return x
}

// Apply implements the supervisor's role contract. A failed Apply leaves
// the node as it was.
func (s *Server) Apply(c *config.Registry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c == nil {
		if s.node != nil {
			err := s.node.Close(context.Background())
			s.node, s.cur = nil, nil
			return err
		}
		return nil
	}
	if s.node != nil {
		if !reflect.DeepEqual(restartOnly(c), restartOnly(s.cur)) {
			return fmt.Errorf("registry: only token, token_file and namespaces change on reload; restart strata to change the rest")
		}
		o, err := OptionsFrom(c, s.log)
		if err != nil {
			return err
		}
		s.node.SetTokens(o.AdminToken, o.NamespaceTokens)
		s.cur = c
		return nil
	}
	o, err := OptionsFrom(c, s.log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("registry: listening on %s: %w", c.Listen, err)
	}
	n, err := Start(ln, o)
	if err != nil {
		ln.Close()
		return err
	}
	grpcAddr := "off"
	if a := n.NacosGRPCAddr(); a != nil {
		grpcAddr = a.String()
	}
	s.log.Info("registry serving", "listen", n.ID(), "raft", n.RaftAddr(), "nacos_grpc", grpcAddr, "data", c.Data)
	s.node, s.cur = n, c
	return nil
}

// Node returns the running node, or nil.
func (s *Server) Node() *Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node
}

// Shutdown stops the node.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node == nil {
		return nil
	}
	err := s.node.Close(ctx)
	s.node = nil
	return err
}
