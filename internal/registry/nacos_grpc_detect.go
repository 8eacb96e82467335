package registry

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Idle connections and unanswered pushes. A Nacos client whose process
// froze, or whose network went away without a FIN, keeps its TCP
// connection open on the server for as long as the kernel does; its
// ephemeral instances would stay listed. As Nacos does, the server asks a
// connection that has been silent for NacosGRPCIdle whether it is there
// (ClientDetectionRequest on its stream), and cuts the connection when no
// answer comes within NacosGRPCAckTimeout: the instances it owns are then
// removed and their subscribers pushed. Pushes (NotifySubscriberRequest)
// are answered by the client with the push's request ID; one that is not
// is sent again, at most maxPushRetries times, unless a newer push of the
// same subscription has replaced it.

// maxPushRetries bounds the resends of one unanswered push.
const maxPushRetries = 3

// trackListener remembers the connections it accepted by remote address,
// so that the server can cut one: gRPC offers no way to close a single
// transport of a server.
type trackListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[string]*trackedGRPCConn
}

func trackConns(ln net.Listener) *trackListener {
	return &trackListener{Listener: ln, conns: map[string]*trackedGRPCConn{}}
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedGRPCConn{Conn: c, l: l, key: c.RemoteAddr().String()}
	l.mu.Lock()
	l.conns[tc.key] = tc
	l.mu.Unlock()
	return tc, nil
}

// cut closes the connection from addr, if it is open.
func (l *trackListener) cut(addr string) {
	l.mu.Lock()
	c := l.conns[addr]
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

type trackedGRPCConn struct {
	net.Conn
	l    *trackListener
	key  string
	once sync.Once
}

func (c *trackedGRPCConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.conns[c.key] == c {
			delete(c.l.conns, c.key)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// touch records that the client sent something.
func (c *nacosConn) touch() { c.active.Store(time.Now().UnixNano()) }

// detectLoop looks for idle connections a few times per idle period.
func (g *nacosGRPC) detectLoop() {
	defer g.wg.Done()
	idle := g.n.opts.NacosGRPCIdle
	t := time.NewTicker(max(idle/4, 10*time.Millisecond))
	defer t.Stop()
	var conns []*nacosConn
	for {
		select {
		case <-g.n.stop:
			return
		case <-t.C:
		}
		g.mu.Lock()
		conns = conns[:0]
		for c := range g.conns {
			conns = append(conns, c)
		}
		g.mu.Unlock()
		now := time.Now().UnixNano()
		for _, c := range conns {
			c.detect(now)
		}
		clear(conns)
	}
}

// detect asks the client whether it is there once it has been idle for
// NacosGRPCIdle, and cuts the connection when it has not answered (nor
// sent anything else) within NacosGRPCAckTimeout.
func (c *nacosConn) detect(now int64) {
	o := c.g.n.opts
	last, asked := c.active.Load(), c.detecting.Load()
	switch {
	case asked != 0 && last >= asked:
		c.detecting.Store(0) // it answered
	case asked != 0 && now-asked >= int64(o.NacosGRPCAckTimeout):
		c.g.n.log.Info("registry nacos grpc: cutting a connection that did not answer a detection", "conn", c.id, "idle", time.Duration(now-last).String())
		c.cut()
	case asked == 0 && now-last >= int64(o.NacosGRPCIdle):
		c.detecting.Store(now)
		// The send runs apart: a client that reads nothing fills the
		// stream's window and blocks it, and then the cut after the
		// timeout is what ends the send.
		c.g.goTracked(func() {
			req := map[string]any{"requestId": strconv.FormatUint(c.g.reqSeq.Add(1), 10), "module": "internal", "headers": map[string]string{}}
			if err := c.push("ClientDetectionRequest", req); err != nil {
				// No stream to ask on: a connection the client never set up.
				c.cut()
			}
		})
	}
}

// cut closes the connection's transport and ends the connection (in the
// background) as if the client had gone.
func (c *nacosConn) cut() {
	c.g.ln.cut(c.peer)
	c.g.goTracked(c.close)
}

// pendingPush is a push waiting for its answer.
type pendingPush struct {
	id    string
	typ   string
	body  any
	tries int
	due   time.Time // when to look for the answer
	ok    atomic.Bool
}

// sendTracked pushes a request whose answer is awaited; the caller
// resends or forgets it.
func (c *nacosConn) sendTracked(typ, id string, body any) *pendingPush {
	p := &pendingPush{id: id, typ: typ, body: body, due: time.Now().Add(c.g.n.opts.NacosGRPCAckTimeout)}
	c.mu.Lock()
	if c.pending != nil {
		c.pending[id] = p
	}
	c.mu.Unlock()
	if err := c.push(typ, body); err != nil {
		c.g.n.log.Debug("registry nacos grpc: push failed", "conn", c.id, "type", typ, "err", err)
	}
	return p
}

// resend sends p again, if it is still unanswered and has tries left; it
// reports whether it did.
func (c *nacosConn) resend(p *pendingPush) bool {
	if p.ok.Load() || p.tries >= maxPushRetries {
		c.forget(p)
		return false
	}
	p.tries++
	p.due = time.Now().Add(c.g.n.opts.NacosGRPCAckTimeout)
	if err := c.push(p.typ, p.body); err != nil {
		c.g.n.log.Debug("registry nacos grpc: push failed", "conn", c.id, "type", p.typ, "err", err)
	}
	return true
}

func (c *nacosConn) forget(p *pendingPush) {
	c.mu.Lock()
	delete(c.pending, p.id)
	c.mu.Unlock()
}

// acked marks the push with request ID id answered.
func (c *nacosConn) acked(id string) {
	c.mu.Lock()
	p := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if p != nil {
		p.ok.Store(true)
	}
}

// ResetNacosGRPCConnections cuts every Nacos gRPC connection of this node
// and returns how many it cut; when it returns, they are ended. Clients reconnect (to this node or
// another) and register their instances again; an operator uses it to
// spread clients over a cluster after a node came back.
func (n *Node) ResetNacosGRPCConnections() int {
	if n.grpc == nil {
		return 0
	}
	g := n.grpc
	g.mu.Lock()
	conns := make([]*nacosConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		g.ln.cut(c.peer)
		c.close()
	}
	return len(conns)
}
