package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/strata-lb/strata/internal/graceful"
)

// Options configure a registry node.
type Options struct {
	// RaftAddr is where Raft listens (host:port; port 0 picks one).
	RaftAddr string
	// Advertise is the HTTP address other nodes and clients reach this
	// node at, and its ID in the cluster (default: the listener's address,
	// which must then not be a wildcard such as 0.0.0.0).
	Advertise string
	// RaftTLS, when set, runs Raft over mutual TLS (RaftTLSConfig makes
	// it): peers without a certificate from its CA are refused.
	RaftTLS *tls.Config
	// RaftInsecure lets plaintext Raft bind off loopback; without it (or
	// RaftTLS) Start refuses such a RaftAddr, since anyone who reaches a
	// plaintext Raft port can join the cluster or feed it entries.
	RaftInsecure bool
	// RaftAdvertise is the Raft address other nodes reach this node at
	// (default: Advertise's host with RaftAddr's port, or RaftAddr).
	RaftAdvertise string
	// DataDir holds the Raft log, stable store and snapshots. Empty keeps
	// everything in memory (tests; a node that forgets on restart).
	DataDir string
	// Join lists HTTP addresses of existing members; a node with no state
	// of its own asks them to add it. Without Join, a node with no state
	// bootstraps a cluster of one.
	Join []string
	// Liveness are the heartbeat timings.
	Liveness LivenessOptions
	// SweepInterval is how often the leader looks for silent instances
	// (default 1s).
	SweepInterval time.Duration
	// AdminToken guards admin writes (services, weights, joins). Empty
	// allows them from loopback clients only.
	AdminToken string
	// NamespaceTokens maps a namespace to the access token every request
	// in it must carry.
	NamespaceTokens map[string]string
	// MaxWait caps the wait of a blocking query (default 5m).
	MaxWait time.Duration
	// MaxParked bounds the blocking queries and watches parked at once
	// (default 65536); more are answered 429 with Retry-After, so a flood
	// of subscribers cannot exhaust the node.
	MaxParked int
	// MaxParkedPerClient bounds those of one client address (default
	// 256), so one host cannot take the whole of MaxParked.
	MaxParkedPerClient int
	// WatchWriteTimeout bounds each write of a parked request's answer
	// (default 10s): a client that stops reading is disconnected and
	// frees its slot.
	WatchWriteTimeout time.Duration
	// Limits bound instances, services and metadata (zero fields take the
	// defaults).
	Limits Limits
	// Config bounds the config service (zero fields take the defaults).
	Config ConfigOptions
	// CacheMillis is the refresh period told to Nacos clients (default 1000).
	CacheMillis int
	// Checks configures server-side checks of persistent instances.
	Checks CheckOptions
	// Logger receives the node's logs (default slog.Default()).
	Logger *slog.Logger
	// NacosGRPC is where the Nacos 2.x gRPC API listens (host:port; port
	// 0 picks one). Empty serves none.
	NacosGRPC string
	// NacosGRPCOptional makes a NacosGRPC that cannot be bound a warning
	// instead of an error: the config's default address, which an
	// existing deployment did not ask for and may have in use (a Nacos
	// on the same host), must not stop the registry from starting.
	NacosGRPCOptional bool
	// NacosGRPCIdle is how long a Nacos gRPC connection may be silent
	// before the server asks the client whether it is still there (a
	// ClientDetectionRequest on its stream; default 20s, as Nacos).
	NacosGRPCIdle time.Duration
	// NacosGRPCAckTimeout is how long the server waits for the answer to
	// a push or a detection (default 3s): a push is sent again, at most
	// three times; a connection that does not answer a detection is cut
	// and its ephemeral instances removed.
	NacosGRPCAckTimeout time.Duration

	// raftStream, when set, wraps the Raft stream layer: the
	// linearizability test cuts and stalls links between nodes with it.
	raftStream func(raft.StreamLayer) raft.StreamLayer
}

// addrOf is ln's address, or nil for no listener.
func addrOf(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// NacosGRPCAddr is where the Nacos gRPC API listens, or nil when it is off.
func (n *Node) NacosGRPCAddr() net.Addr {
	if n.grpc == nil {
		return nil
	}
	return n.grpc.ln.Addr()
}

// NacosGRPCConnections is the number of Nacos gRPC connections open on
// this node.
func (n *Node) NacosGRPCConnections() int {
	if n.grpc == nil {
		return 0
	}
	n.grpc.mu.Lock()
	defer n.grpc.mu.Unlock()
	return len(n.grpc.conns)
}

// Node is one registry server: the store, Raft and the HTTP API.
type Node struct {
	opts  Options
	log   *slog.Logger
	store *Store
	live  *Liveness
	raft  *raft.Raft
	trans *raft.NetworkTransport
	bolt  *raftboltdb.BoltStore
	id    string // the HTTP address, which is also the Raft server ID

	srv     *http.Server
	ln      net.Listener
	handler http.Handler
	fwd     *http.Client
	answers answerCache
	parked  atomic.Int64 // blocking queries and watches in progress
	// parkedBy counts parked requests per client address; an entry goes
	// when its count reaches zero, so the map is bounded by MaxParked.
	parkedMu sync.Mutex
	parkedBy map[string]int
	stats    parkStats

	// leading is true once the leader loop has taken up this node's
	// leadership (liveness epoch set, previous term applied).
	leading atomic.Bool
	// barrierTerm is the Raft term in which this node, leading, last
	// applied a barrier: every entry committed before its term is in its
	// store. Consistent reads need it to be the current term.
	barrierTerm atomic.Uint64
	auth        atomic.Pointer[authConfig]

	stop chan struct{}
	// verifying is held (read) by every consistent read while it waits
	// for Raft to confirm this node leads. Raft answers such a wait while
	// it runs (at the latest when a cut-off leader's lease ends), but one
	// still queued when Raft shuts down is never answered; so stopping
	// takes it (write) before shutting Raft down.
	verifying sync.RWMutex
	// ctx ends when the node stops, releasing parked blocking queries and
	// watches so that shutdown does not wait out their waits.
	ctx     context.Context
	cancel  context.CancelFunc
	done    sync.WaitGroup
	closeMu sync.Once
	checks  *checker
	grpc    *nacosGRPC // nil when the Nacos gRPC API is off
	// gone marks recent explicit deregistrations, so that a heartbeat
	// already on its way does not register the instance again.
	gone tombstones
	// nacosOwners is, on the leader, which Nacos gRPC connection owns
	// each ephemeral instance registered over one (nacos_grpc_cluster.go).
	nacosOwners nacosOwners
}

// ErrNoLeader is returned when no leader is elected in time.
var ErrNoLeader = errors.New("registry: no leader")

// Start opens Raft and serves the HTTP API on ln, whose address becomes
// the node's ID.
func Start(ln net.Listener, opts Options) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Advertise == "" {
		opts.Advertise = ln.Addr().String()
	}
	if host, _, err := net.SplitHostPort(opts.Advertise); err != nil {
		return nil, fmt.Errorf("registry: advertise address %q: %w", opts.Advertise, err)
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("registry: %s is not an address other nodes can reach; set an advertise address", opts.Advertise)
	}
	// Without a token every client that reaches the port could write;
	// that is only acceptable when the port is reachable from this machine
	// alone.
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() && opts.AdminToken == "" {
		return nil, fmt.Errorf("registry: listening on %s, off loopback, needs an admin token (registry.token or registry.token_file)", ln.Addr())
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Second
	}
	opts.Limits = opts.Limits.withDefaults()
	opts.Config = opts.Config.withDefaults()
	if opts.MaxWait == 0 {
		opts.MaxWait = 5 * time.Minute
	}
	if opts.MaxParked == 0 {
		opts.MaxParked = 65536
	}
	if opts.MaxParkedPerClient == 0 {
		opts.MaxParkedPerClient = 256
	}
	if opts.WatchWriteTimeout == 0 {
		opts.WatchWriteTimeout = 10 * time.Second
	}
	if opts.CacheMillis == 0 {
		opts.CacheMillis = 1000
	}
	if opts.NacosGRPCIdle == 0 {
		opts.NacosGRPCIdle = 20 * time.Second
	}
	if opts.NacosGRPCAckTimeout == 0 {
		opts.NacosGRPCAckTimeout = 3 * time.Second
	}
	n := &Node{
		opts:  opts,
		log:   opts.Logger,
		store: NewStore(),
		live:  NewLiveness(opts.Liveness),
		id:    opts.Advertise,
		ln:    ln,
		stop:  make(chan struct{}),
		fwd:   &http.Client{Timeout: 10 * time.Second},

		parkedBy: map[string]int{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.SetTokens(opts.AdminToken, opts.NamespaceTokens)
	var gl net.Listener
	if opts.NacosGRPC != "" {
		var err error
		gl, err = net.Listen("tcp", opts.NacosGRPC)
		switch {
		case err != nil && opts.NacosGRPCOptional:
			opts.Logger.Warn("registry: not serving Nacos gRPC at its default address; set registry.nacos_grpc.listen", "addr", opts.NacosGRPC, "err", err)
		case err != nil:
			return nil, fmt.Errorf("registry: nacos grpc: %w", err)
		}
		if ta, ok := addrOf(gl).(*net.TCPAddr); ok && !ta.IP.IsLoopback() && opts.AdminToken == "" {
			gl.Close()
			return nil, fmt.Errorf("registry: nacos grpc on %s, off loopback, needs an admin token (registry.token or registry.token_file)", gl.Addr())
		}
	}
	if err := n.openRaft(); err != nil {
		if gl != nil {
			gl.Close()
		}
		return nil, err
	}
	n.checks = newChecker(n, opts.Checks)
	if gl != nil {
		n.grpc = startNacosGRPC(n, gl)
	}
	n.handler = n.routes()
	n.srv = &http.Server{Handler: n.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	graceful.CloseUnusedOnShutdown(n.srv) // Close does not wait 5 s for connections that sent nothing
	n.done.Add(2)
	go func() {
		defer n.done.Done()
		if err := n.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("registry http server", "err", err)
		}
	}()
	go n.leaderLoop()
	if len(opts.Join) > 0 {
		n.done.Add(1)
		go n.joinLoop()
	}
	return n, nil
}

func (n *Node) openRaft() error {
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(n.id)
	cfg.Logger = newHCLog(n.log)
	// Snapshots every 8k entries keep a restarted node's replay short; a
	// registry's entries are small.
	cfg.SnapshotThreshold = 8192
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.LeaderLeaseTimeout = 250 * time.Millisecond
	var adv net.Addr
	if a := n.raftAdvertise(); a != "" {
		ta, err := net.ResolveTCPAddr("tcp", a)
		if err != nil {
			return fmt.Errorf("registry: raft advertise address %q: %w", a, err)
		}
		adv = ta
	}
	trans, err := n.raftTransport(adv)
	if err != nil {
		return fmt.Errorf("registry: opening raft transport on %s: %w", n.opts.RaftAddr, err)
	}
	n.trans = trans
	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if n.opts.DataDir == "" {
		ms := raft.NewInmemStore()
		logs, stable, snaps = ms, ms, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(n.opts.DataDir, 0o750); err != nil {
			trans.Close()
			return fmt.Errorf("registry: creating data dir: %w", err)
		}
		b, err := raftboltdb.NewBoltStore(filepath.Join(n.opts.DataDir, "raft.db"))
		if err != nil {
			trans.Close()
			return fmt.Errorf("registry: opening raft log: %w", err)
		}
		n.bolt = b
		logs, stable = b, b
		fs, err := raft.NewFileSnapshotStore(n.opts.DataDir, 2, io.Discard)
		if err != nil {
			b.Close()
			trans.Close()
			return fmt.Errorf("registry: opening snapshot store: %w", err)
		}
		snaps = fs
	}
	has, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		n.closeStores()
		return fmt.Errorf("registry: reading raft state: %w", err)
	}
	if !has && len(n.opts.Join) == 0 {
		conf := raft.Configuration{Servers: []raft.Server{{ID: cfg.LocalID, Address: trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(cfg, logs, stable, snaps, trans, conf); err != nil {
			n.closeStores()
			return fmt.Errorf("registry: bootstrapping: %w", err)
		}
	}
	r, err := raft.NewRaft(cfg, &fsm{n.store}, logs, stable, snaps, trans)
	if err != nil {
		n.closeStores()
		return fmt.Errorf("registry: starting raft: %w", err)
	}
	n.raft = r
	return nil
}

// raftTransport opens Raft's transport: mutual TLS when RaftTLS is set,
// plaintext TCP otherwise, which must then stay on loopback unless
// RaftInsecure says so.
func (n *Node) raftTransport(adv net.Addr) (*raft.NetworkTransport, error) {
	if n.opts.RaftTLS != nil {
		s, err := newTLSStreamLayer(n.opts.RaftAddr, adv, n.opts.RaftTLS)
		if err != nil {
			return nil, err
		}
		return raft.NewNetworkTransport(closing(n.wrapStream(s)), 3, 5*time.Second, io.Discard), nil
	}
	host, _, err := net.SplitHostPort(n.opts.RaftAddr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		if !n.opts.RaftInsecure {
			return nil, fmt.Errorf("plaintext Raft off loopback lets anyone who reaches %s join the cluster or feed it entries; set registry.raft.tls, or registry.raft.insecure: true", n.opts.RaftAddr)
		}
		n.log.Warn("registry: Raft is plaintext and unauthenticated off loopback (registry.raft.insecure); anyone who reaches it can join the cluster or feed it entries", "raft", n.opts.RaftAddr)
	}
	s, err := newTCPStream(n.opts.RaftAddr, adv)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransport(closing(n.wrapStream(s)), 3, 5*time.Second, io.Discard), nil
}

func (n *Node) wrapStream(s raft.StreamLayer) raft.StreamLayer {
	if n.opts.raftStream == nil {
		return s
	}
	return n.opts.raftStream(s)
}

// raftAdvertise is the Raft address to advertise, or "" to advertise the
// bound address.
func (n *Node) raftAdvertise() string {
	if n.opts.RaftAdvertise != "" {
		return n.opts.RaftAdvertise
	}
	bh, bp, err := net.SplitHostPort(n.opts.RaftAddr)
	if err != nil || bp == "0" {
		return ""
	}
	if ip := net.ParseIP(bh); bh != "" && (ip == nil || !ip.IsUnspecified()) {
		return "" // a concrete bind address advertises itself
	}
	ah, _, err := net.SplitHostPort(n.opts.Advertise)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(ah, bp)
}

func (n *Node) closeStores() {
	if n.bolt != nil {
		n.bolt.Close()
	}
	n.trans.Close()
}

// ID is the node's HTTP address (its Raft server ID).
func (n *Node) ID() string { return n.id }

// Addr is the bound address of the HTTP API.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// RaftAddr is the address Raft listens on.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// Store is the node's local state (reads only).
func (n *Node) Store() *Store { return n.store }

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Serving reports whether this node leads and has taken up the leader's
// duties (heartbeat sweeps, checks).
func (n *Node) Serving() bool { return n.leading.Load() && n.IsLeader() }

// Leader returns the leader's HTTP address, or "".
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// waitLeader waits until some node leads and returns its HTTP address.
func (n *Node) waitLeader(ctx context.Context) (string, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if l := n.Leader(); l != "" {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return "", ErrNoLeader
		case <-n.stop:
			return "", ErrNoLeader
		case <-t.C:
		}
	}
}

// Propose replicates c through the leader; it must be called on the
// leader (the HTTP layer forwards writes that reach a follower). It
// returns once the command is committed and applied here.
func (n *Node) Propose(c *Command) (uint64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	if err := n.opts.Limits.checkCommand(c); err != nil {
		return 0, err
	}
	n.opts.Limits.stamp(c)
	data, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	f := n.raft.Apply(data, 5*time.Second)
	if err := f.Error(); err != nil {
		// Leadership lost, no leader, a timeout: the caller may retry.
		return 0, errf(503, "replicating %s: %v", c.Op, err)
	}
	r, _ := f.Response().(applyResult)
	return r.index, r.err
}

// leaderLoop runs the leader's duties: heartbeat sweeps and persistent
// checks. A node that becomes leader counts silence from then on, so each
// instance gets a full RemoveAfter to reach it.
func (n *Node) leaderLoop() {
	defer n.done.Done()
	defer n.checks.stop()
	t := time.NewTicker(n.opts.SweepInterval)
	defer t.Stop()
	leading := false
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		now := n.IsLeader()
		// A new term is a new leadership even when this loop did not see
		// the node lose the old one (lost and won back within a tick).
		term := n.raft.CurrentTerm()
		if now && (!leading || n.barrierTerm.Load() != term) {
			n.live.Lead()
			// The barrier makes sure every entry of the previous terms is
			// applied before this node judges instances on its store or
			// answers a consistent read.
			if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
				continue
			}
			n.barrierTerm.Store(term)
		}
		leading = now
		n.leading.Store(now)
		if !leading {
			n.checks.stop()
			continue
		}
		if c := n.live.Sweep(n.store); c != nil {
			if _, err := n.Propose(c); err != nil {
				n.log.Warn("registry: replicating heartbeat expiry", "err", err)
			}
		}
		n.checks.tick()
	}
}

// joinLoop asks the Join addresses to add this node until one does.
func (n *Node) joinLoop() {
	defer n.done.Done()
	body, _ := json.Marshal(joinRequest{ID: n.id, RaftAddr: n.RaftAddr()})
	for attempt := 0; ; attempt++ {
		for _, addr := range n.opts.Join {
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/registry/cluster/join", bytes.NewReader(body))
			if a := n.auth.Load(); a.admin != "" {
				req.Header.Set("Authorization", "Bearer "+a.admin)
			}
			resp, err := n.fwd.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					n.log.Info("registry: joined cluster", "via", addr)
					return
				}
				err = fmt.Errorf("status %s", resp.Status)
			}
			if attempt%10 == 0 {
				n.log.Warn("registry: joining cluster", "via", addr, "err", err)
			}
		}
		select {
		case <-n.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// join adds a voter; it runs on the leader.
func (n *Node) join(j joinRequest) error {
	if j.ID == "" || j.RaftAddr == "" {
		return fmt.Errorf("join needs id and raft_addr")
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(j.ID) && s.Address == raft.ServerAddress(j.RaftAddr) {
			return nil // already a member: a restarted node asking again
		}
	}
	return n.raft.AddVoter(raft.ServerID(j.ID), raft.ServerAddress(j.RaftAddr), 0, 10*time.Second).Error()
}

// removePeer removes a server from the cluster for good; it runs on the
// leader. A dead node left in the configuration counts towards the quorum
// it can never help to reach: with one of three dead, a second failure
// stops every write, while after its removal the two left form a cluster
// of two.
func (n *Node) removePeer(id string) error {
	if id == "" {
		return errf(http.StatusBadRequest, "remove needs the id of a peer (its HTTP address, as GET /v1/registry/cluster lists it)")
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	found := false
	for _, s := range f.Configuration().Servers {
		found = found || s.ID == raft.ServerID(id)
	}
	if !found {
		return errf(http.StatusNotFound, "no peer %q in the cluster", id)
	}
	if id == n.id {
		return errf(http.StatusConflict, "peer %q is the leader; stop it (a new leader is elected) and remove it through another node", id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
		return errf(http.StatusServiceUnavailable, "removing peer %s: %v", id, err)
	}
	n.log.Info("registry: removed peer", "id", id)
	return nil
}

// Members lists the cluster's servers.
func (n *Node) Members() []raft.Server {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}

// Close stops serving, leaves Raft running no more and closes the stores.
// It does not remove the node from the cluster: a node that restarts with
// the same data dir takes its place again.
func (n *Node) Close(ctx context.Context) error {
	var err error
	n.closeMu.Do(func() {
		close(n.stop)
		n.cancel()
		if n.grpc != nil {
			n.grpc.close()
		}
		err = n.srv.Shutdown(ctx)
		n.verifying.Lock()
		n.verifying.Unlock()
		if e := n.raft.Shutdown().Error(); e != nil && err == nil {
			err = e
		}
		n.trans.Close()
		if n.bolt != nil {
			n.bolt.Close()
		}
		n.done.Wait()
	})
	return err
}

// Kill stops the node abruptly, as a crash would (tests).
func (n *Node) Kill() {
	n.closeMu.Do(func() {
		close(n.stop)
		n.cancel()
		if n.grpc != nil {
			n.grpc.close()
		}
		n.srv.Close()
		n.verifying.Lock()
		n.verifying.Unlock()
		n.raft.Shutdown().Error()
		n.trans.Close()
		if n.bolt != nil {
			n.bolt.Close()
		}
		n.done.Wait()
	})
}
