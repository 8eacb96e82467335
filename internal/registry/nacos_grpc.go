package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
)

// The Nacos 2.x gRPC server: what Nacos 2 clients (the official SDKs of
// version 2) speak, on the HTTP port + 1000 by default (9848 for 8848).
// Two services carry everything: /Request/request, one Payload in and one
// out, and /BiRequestStream/requestBiStream, on which the client opens its
// connection (ConnectionSetupRequest) and the server pushes
// (NotifySubscriberRequest). A connection is one HTTP/2 transport: the
// ephemeral instances registered over it and its subscriptions live as
// long as it does.

// nacosGRPC serves the Nacos gRPC API of one node.
type nacosGRPC struct {
	n   *Node
	srv *grpc.Server
	ln  *trackListener

	mu    sync.Mutex
	conns map[*nacosConn]struct{}
	// owner maps an ephemeral instance to the connection that registered
	// it last (and the instance as registered, which its beats carry), so
	// a connection that ends removes only what is still its.
	owner map[ownedKey]ownedInstance

	// closing is set, under mu, when the server stops; goroutines are
	// only started (go) before it, so wg.Wait sees every one.
	closing bool
	wg      sync.WaitGroup

	seq     atomic.Uint64 // connection ids
	reqSeq  atomic.Uint64 // ids of requests the server pushes
	lastRef atomic.Int64  // the last lastRefTime handed out
}

// goTracked runs fn in a goroutine that close waits for, unless the
// server is stopping; it reports whether it did.
func (g *nacosGRPC) goTracked(fn func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn()
	}()
	return true
}

// stopping reports whether the server is stopping.
func (g *nacosGRPC) stopping() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

// ownedKey names an instance: its service and its ID within it.
type ownedKey struct {
	k  Key
	id string
}

// ownedInstance is an ephemeral instance and the connection it belongs to.
type ownedInstance struct {
	c  *nacosConn
	in Instance
}

// startNacosGRPC serves the Nacos gRPC API on ln.
func startNacosGRPC(n *Node, ln net.Listener) *nacosGRPC {
	g := &nacosGRPC{n: n, ln: trackConns(ln), conns: map[*nacosConn]struct{}{}, owner: map[ownedKey]ownedInstance{}}
	g.srv = grpc.NewServer(
		grpc.ForceServerCodec(nacosCodec{}),
		grpc.StatsHandler(g),
		// The Go SDK pings every 10s (its keepalive default is 10s, with
		// PermitWithoutStream); grpc-go's default policy would answer
		// those pings with GOAWAY after a few and cut the connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	g.srv.RegisterService(&nacosRequestDesc, g)
	g.srv.RegisterService(&nacosBiStreamDesc, g)
	g.wg.Add(3)
	go func() {
		defer g.wg.Done()
		if err := g.srv.Serve(g.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.log.Error("registry nacos grpc server", "err", err)
		}
	}()
	go g.beatLoop()
	go g.detectLoop()
	return g
}

// close stops the server. Instances of the connections it cuts are left
// to the leader's heartbeat sweep: while the node stops, Raft may be going
// too, and a client that reconnects elsewhere registers them again.
func (g *nacosGRPC) close() {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	g.srv.Stop()
	g.wg.Wait()
}

// nacosRequestDesc and nacosBiStreamDesc declare the two services by the
// unqualified names the clients call (/Request/request,
// /BiRequestStream/requestBiStream). They are written out by hand rather
// than generated, so no proto service is registered under these names.
var nacosRequestDesc = grpc.ServiceDesc{
	ServiceName: "Request",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "request",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var p nacosPayload
			if err := dec(&p); err != nil {
				return nil, err
			}
			return srv.(*nacosGRPC).request(ctx, &p), nil
		},
	}},
}

var nacosBiStreamDesc = grpc.ServiceDesc{
	ServiceName: "BiRequestStream",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "requestBiStream",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(srv any, s grpc.ServerStream) error {
			return srv.(*nacosGRPC).biStream(s)
		},
	}},
}

// nacosConn is one client connection.
type nacosConn struct {
	g    *nacosGRPC
	id   string
	peer string // the transport's remote address: what auth trusts
	ctx  context.Context
	stop context.CancelFunc

	// sendMu serializes sends on the bi-stream (a gRPC stream takes one
	// sender at a time).
	sendMu sync.Mutex
	stream grpc.ServerStream

	// active is when the client last sent anything (Unix nanoseconds);
	// detecting when the server asked an idle client whether it is still
	// there (0: it has not).
	active    atomic.Int64
	detecting atomic.Int64

	mu      sync.Mutex
	closed  bool
	owned   map[ownedKey]struct{}
	subs    map[subKey]context.CancelFunc
	pending map[string]*pendingPush // pushes not acknowledged yet, by request ID
	cfg     *configListen           // the config keys it listens to, or nil
}

// subKey names a subscription: a service and the clusters it asked for.
type subKey struct {
	k        Key
	clusters string
}

type connCtxKey struct{}

// TagConn implements stats.Handler: every transport gets its connection,
// which the calls on it find in their context.
func (g *nacosGRPC) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	c := &nacosConn{
		g: g, id: strconv.FormatInt(time.Now().UnixMilli(), 10) + "_" + strconv.FormatUint(g.seq.Add(1), 10),
		owned: map[ownedKey]struct{}{}, subs: map[subKey]context.CancelFunc{}, pending: map[string]*pendingPush{},
	}
	c.touch()
	if info.RemoteAddr != nil {
		c.peer = info.RemoteAddr.String()
		c.id += "_" + c.peer
	}
	// The node's address makes the ID unique in the cluster: the leader
	// tells connections of different nodes apart by it.
	c.id += "@" + g.n.id
	c.ctx, c.stop = context.WithCancel(g.n.ctx)
	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	return context.WithValue(ctx, connCtxKey{}, c)
}

// HandleConn implements stats.Handler: a transport that ends ends its
// connection.
func (g *nacosGRPC) HandleConn(ctx context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnEnd); !ok {
		return
	}
	if c, ok := ctx.Value(connCtxKey{}).(*nacosConn); ok {
		// Deregistering goes through Raft, which the transport's
		// goroutine should not wait for; while the server stops, close
		// proposes nothing and runs here.
		if !g.goTracked(c.close) {
			c.close()
		}
	}
}

func (g *nacosGRPC) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (g *nacosGRPC) HandleRPC(context.Context, stats.RPCStats)                       {}

// connOf returns the connection a call came on.
func connOf(ctx context.Context) *nacosConn {
	c, _ := ctx.Value(connCtxKey{}).(*nacosConn)
	return c
}

// close ends the connection: its subscriptions stop and the ephemeral
// instances it still owns are deregistered (through the leader), which
// pushes the change to every subscriber. It runs when the transport or
// the bi-stream ends.
func (c *nacosConn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	owned := c.owned
	c.owned = nil
	c.mu.Unlock()
	c.stop()

	g := c.g
	var items []grpcItem
	g.mu.Lock()
	delete(g.conns, c)
	for o := range owned {
		if oi, ok := g.owner[o]; ok && oi.c == c {
			delete(g.owner, o)
			items = append(items, grpcItem{Conn: c.id, Key: o.k, Instance: oi.in})
		}
	}
	g.mu.Unlock()
	if len(items) == 0 || g.stopping() {
		// While the node stops, Raft may be going too; the leader's sweep
		// removes what is left once this node's beats for it stop.
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.apply(ctx, nil, &grpcWrite{Op: grpcOpRelease, Items: items}, g.n.nodeToken()); err != nil {
		g.n.log.Warn("registry nacos grpc: deregistering a closed connection's instances; they expire when their heartbeats stop", "conn", c.id, "instances", len(items), "err", err)
	}
}

// own records that the connection registered the ephemeral instance in.
func (c *nacosConn) own(k Key, in Instance) error {
	o := ownedKey{k.withDefaults(), in.ID()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errf(http.StatusServiceUnavailable, "connection %s is closed; reconnect", c.id)
	}
	c.owned[o] = struct{}{}
	c.g.mu.Lock()
	c.g.owner[o] = ownedInstance{c, in}
	c.g.mu.Unlock()
	return nil
}

// disown forgets an instance the connection deregistered.
func (c *nacosConn) disown(k Key, id string) {
	o := ownedKey{k.withDefaults(), id}
	c.mu.Lock()
	delete(c.owned, o)
	c.mu.Unlock()
	c.g.mu.Lock()
	if c.g.owner[o].c == c {
		delete(c.g.owner, o)
	}
	c.g.mu.Unlock()
}

// beatLoop beats, on the connections' behalf, for the ephemeral instances
// they own: a live connection is the heartbeat of Nacos 2 clients, which
// send none of their own. The beats go to the leader (through
// nacos_grpc_cluster.go), which keeps the heartbeats.
func (g *nacosGRPC) beatLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.n.live.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-g.n.stop:
			return
		case <-t.C:
		}
		g.mu.Lock()
		items := make([]grpcItem, 0, len(g.owner))
		for o, oi := range g.owner {
			items = append(items, grpcItem{Conn: oi.c.id, Key: o.k, Instance: oi.in})
		}
		g.mu.Unlock()
		for len(items) > 0 {
			chunk := items[:min(len(items), maxGRPCBeatItems)]
			items = items[len(chunk):]
			ctx, cancel := context.WithTimeout(g.n.ctx, g.n.live.opts.Interval)
			err := g.apply(ctx, nil, &grpcWrite{Op: grpcOpBeat, Items: chunk}, g.n.nodeToken())
			cancel()
			if err != nil {
				g.n.log.Warn("registry nacos grpc: beating for the connections' instances", "instances", len(chunk), "err", err)
				break
			}
		}
	}
}

// refTime returns a lastRefTime later than every one handed out before:
// clients drop a push whose time is not after the one they hold.
func (g *nacosGRPC) refTime() int64 {
	now := time.Now().UnixMilli()
	for {
		last := g.lastRef.Load()
		t := max(now, last+1)
		if g.lastRef.CompareAndSwap(last, t) {
			return t
		}
	}
}

// authRequest stands a call in for an HTTP request, so the Nacos gRPC API
// goes through the same auth checks as the HTTP one: the token is the
// accessToken header of the payload, and the address the transport's peer
// (never the payload's clientIp, which the client makes up).
func authRequest(c *nacosConn, p *nacosPayload) *http.Request {
	q := url.Values{}
	if t := p.Headers["accessToken"]; t != "" {
		q.Set("accessToken", t)
	}
	return &http.Request{Header: http.Header{}, URL: &url.URL{RawQuery: q.Encode()}, RemoteAddr: c.peer}
}

// nacosResponse is the part every response has.
type nacosResponse struct {
	ResultCode int    `json:"resultCode"`
	ErrorCode  int    `json:"errorCode"`
	Success    bool   `json:"success"`
	Message    string `json:"message,omitempty"`
	RequestID  string `json:"requestId"`
}

func okResponse(requestID string) nacosResponse {
	return nacosResponse{ResultCode: 200, Success: true, RequestID: requestID}
}

// errorPayload answers a failed call with a response of type typ, as
// Nacos does: resultCode 500, the error's HTTP status as errorCode.
// Refusals (auth, limits, bad input) come back in the request's own
// response type; the Go SDK takes an ErrorResponse for a broken
// connection, retries and reconnects, where a typed failure is returned
// to the caller.
func errorPayload(typ, requestID string, err error) *nacosPayload {
	code := http.StatusInternalServerError
	var he *httpError
	var le *LimitError
	switch {
	case errors.As(err, &he):
		code = he.code
	case errors.As(err, &le):
		code = http.StatusTooManyRequests
	}
	return responsePayload(typ, nacosResponse{ResultCode: 500, ErrorCode: code, Message: err.Error(), RequestID: requestID})
}

func responsePayload(typ string, v any) *nacosPayload {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"resultCode":500,"errorCode":500,"success":false,"message":"encoding the response failed"}`)
		typ = "ErrorResponse"
	}
	return &nacosPayload{Type: typ, Body: b}
}

// request answers one unary call.
func (g *nacosGRPC) request(ctx context.Context, p *nacosPayload) *nacosPayload {
	c := connOf(ctx)
	if c == nil {
		// Every transport is tagged; this is only a guard.
		c = &nacosConn{g: g, ctx: ctx, owned: map[ownedKey]struct{}{}, subs: map[subKey]context.CancelFunc{}}
		if pr, ok := peer.FromContext(ctx); ok {
			c.peer = pr.Addr.String()
		}
	}
	c.touch()
	var head struct {
		RequestID string `json:"requestId"`
	}
	json.Unmarshal(p.Body, &head)
	switch p.Type {
	case "ServerCheckRequest":
		return responsePayload("ServerCheckResponse", struct {
			nacosResponse
			ConnectionID string `json:"connectionId"`
		}{okResponse(head.RequestID), c.id})
	case "HealthCheckRequest":
		return responsePayload("HealthCheckResponse", okResponse(head.RequestID))
	}
	h, ok := nacosNamingHandlers[p.Type]
	if !ok {
		h, ok = nacosConfigHandlers[p.Type]
	}
	if !ok {
		return errorPayload("ErrorResponse", head.RequestID, errf(http.StatusNotImplemented, "strata's registry does not serve %q over Nacos gRPC", p.Type))
	}
	typ, v, err := h.handle(g, ctx, c, p, authRequest(c, p))
	if err != nil {
		g.n.countRefused(err)
		return errorPayload(h.response, head.RequestID, err)
	}
	return responsePayload(typ, v)
}

// biStream serves a connection's bi-directional stream: the client's
// ConnectionSetupRequest and its answers to pushes come in, pushes go
// out. When it ends, so does the connection.
func (g *nacosGRPC) biStream(s grpc.ServerStream) error {
	c := connOf(s.Context())
	if c == nil {
		return errors.New("nacos grpc: untagged connection")
	}
	c.sendMu.Lock()
	c.stream = s
	c.sendMu.Unlock()
	defer func() {
		c.sendMu.Lock()
		c.stream = nil
		c.sendMu.Unlock()
		c.close()
	}()
	for {
		var p nacosPayload
		if err := s.RecvMsg(&p); err != nil {
			return nil
		}
		c.touch()
		// ConnectionSetupRequest needs no answer; an answer to a push
		// (NotifySubscriberResponse) stops its retries, and one to a
		// detection (ClientDetectionResponse) is the activity touch
		// recorded.
		if strings.HasSuffix(p.Type, "Response") {
			var head struct {
				RequestID string `json:"requestId"`
			}
			if json.Unmarshal(p.Body, &head) == nil && head.RequestID != "" {
				c.acked(head.RequestID)
			}
		}
	}
}

// push sends a server request on the connection's bi-stream.
func (c *nacosConn) push(typ string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.stream == nil {
		return errors.New("nacos grpc: the connection has no stream")
	}
	return c.stream.SendMsg(&nacosPayload{Type: typ, Body: b})
}
