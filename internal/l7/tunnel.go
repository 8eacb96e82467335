package l7

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

// tunnels tracks upgraded connections (WebSocket and the like). They are
// hijacked from the server, whose Shutdown no longer sees them, so the
// Server waits for and, at its deadline, closes them itself. Apply leaves
// them alone: a config reload does not cut a WebSocket.
type tunnels struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func (t *tunnels) add(cs ...net.Conn) {
	t.mu.Lock()
	if t.conns == nil {
		t.conns = map[net.Conn]struct{}{}
	}
	for _, c := range cs {
		t.conns[c] = struct{}{}
	}
	t.mu.Unlock()
}

func (t *tunnels) remove(cs ...net.Conn) {
	t.mu.Lock()
	for _, c := range cs {
		delete(t.conns, c)
	}
	t.mu.Unlock()
}

func (t *tunnels) closeAll() {
	t.mu.Lock()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
}

// tunnel forwards an Upgrade request on a connection of its own and, when
// the backend answers 101, joins client and backend byte for byte until
// both sides have finished. Any other answer is relayed as a normal
// response.
func (s *Server) tunnel(w http.ResponseWriter, r *http.Request, rt *route, snap *upstream.Snapshot, b *upstream.Backend, ip string) {
	if r.Body != nil && r.Body != http.NoBody {
		// A request body before the switch would need its own framing
		// on a connection about to change protocol; no client does this.
		http.Error(w, "upgrade requests with a body are not supported", http.StatusNotImplemented)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "protocol upgrade not supported here", http.StatusNotImplemented)
		return
	}
	b.Active.Add(1)
	defer func() { b.Active.Add(-1) }() // b may change below
	b.Requests.Add(1)
	cp := s.tr.pool(b.Addr)
	c, err := s.tr.dial(r.Context(), cp)
	if err != nil && isIdempotent(r.Method) {
		s.fail(b)
		if nb := another(snap, []*upstream.Backend{b}, rt.hashKey(r, ip)); nb != nil {
			b.Active.Add(-1)
			b = nb
			b.Active.Add(1)
			b.Requests.Add(1)
			c, err = s.tr.dial(r.Context(), s.tr.pool(b.Addr))
		}
	}
	if err != nil {
		s.fail(b)
		s.log.Warn("connecting to backend", "pool", rt.pool.Name(), "backend", b.Name, "err", err)
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	c.attach()
	c.extendDeadline(time.Now(), s.tr.ioTimeout)
	x := exchangePool.Get().(*exchange)
	defer releaseExchange(x)
	x.c, x.timeout = c, s.tr.ioTimeout

	writeHead(c.bw, r, ip)
	c.bw.WriteString("Upgrade: ")
	c.bw.WriteString(r.Header.Get("Upgrade"))
	c.bw.WriteString("\r\nConnection: Upgrade\r\n\r\n")
	err = c.bw.Flush()
	if err == nil {
		_, err = readResponseHead(c.br, &x.head)
		for err == nil && x.head.status >= 100 && x.head.status < 200 && x.head.status != 101 {
			_, err = readResponseHead(c.br, &x.head)
		}
	}
	if err != nil {
		c.close()
		s.fail(b)
		s.log.Warn("upgrading through backend", "pool", rt.pool.Name(), "backend", b.Name, "err", err)
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	if x.head.status != http.StatusSwitchingProtocols {
		// The backend declined; its answer goes to the client as is and
		// the connection is not reused, having been asked to switch.
		x.head.close = true
		if res, err := s.relay(w, r, b, c, x); res == relayFailed {
			s.log.Warn("relaying response from backend", "pool", rt.pool.Name(), "backend", b.Name, "err", err)
			panic(http.ErrAbortHandler)
		}
		return
	}
	s.succeed(b)

	// Counted before the hijack, while the server still sees the request
	// as active, so that Shutdown cannot miss the tunnel.
	s.tunnels.wg.Add(1)
	defer s.tunnels.wg.Done()
	// The listener's own count lets a listener removed by Apply wait for
	// its tunnels, and cut them, within the drain timeout.
	ln := listenerOf(r)
	if ln != nil {
		ln.tunnels.wg.Add(1)
		defer ln.tunnels.wg.Done()
	}
	client, cbuf, err := hj.Hijack()
	if err != nil {
		c.close()
		s.log.Warn("taking over client connection", "err", err)
		return
	}
	// The 101 head goes to the client as the backend wrote it, minus
	// nothing: Upgrade and Connection are exactly what it must see.
	cbuf.Write(x.head.raw)
	if n := c.br.Buffered(); n > 0 {
		p, _ := c.br.Peek(n)
		cbuf.Write(p)
	}
	if err := cbuf.Flush(); err != nil {
		client.Close()
		c.close()
		return
	}
	up := c.nc
	// Bytes the client sent after its request head are already in
	// the server's read buffer; they belong to the new protocol.
	if n := cbuf.Reader.Buffered(); n > 0 {
		p, _ := cbuf.Reader.Peek(n)
		if _, err := up.Write(p); err != nil {
			client.Close()
			c.close()
			return
		}
	}
	c.detach()
	client.SetDeadline(time.Time{})
	up.SetDeadline(time.Time{})

	s.tunnels.add(client, up)
	defer s.tunnels.remove(client, up)
	if ln != nil {
		ln.tunnels.add(client, up)
		defer ln.tunnels.remove(client, up)
	}
	if s.metrics != nil {
		s.metrics.tunnels.Inc()
		defer s.metrics.tunnels.Dec()
	}
	s.join(client, up)
}

// join copies both ways until each side has closed its half, passing a
// half-close on as one, then closes both connections.
func (s *Server) join(client, up net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(up, client)
	}()
	pipe(client, up)
	<-done
	client.Close()
	up.Close()
}

// pipe copies src to dst, then shuts dst's write side so the peer sees the
// end of the stream. On an error both ends are closed to unblock the other
// direction.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}
