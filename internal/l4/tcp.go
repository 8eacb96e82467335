package l4

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/strata-lb/strata/internal/upstream"
)

// maxChunk bounds one splice: the connection table's byte counts and the
// idle clock move at least this often on a busy connection.
const maxChunk = 4 << 20

// dialAttempts is how many backends a new connection tries before it
// gives up (or goes to the sorry server): a backend that refuses is
// reported to passive ejection and the next pick goes elsewhere.
const dialAttempts = 3

// serveTCP accepts on one TCP listener until it is closed.
func (s *Server) serveTCP(l *listener) {
	defer s.wg.Done()
	defer close(l.done)
	var backoff time.Duration
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or a similar transient failure:
			// back off as net/http does rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept", "listener", l.key, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		svc := l.svc.Load()
		client := addrPortOf(c.RemoteAddr())
		if !s.admit(svc, client.Addr()) {
			// A refused client gets a reset, not a graceful close: it
			// costs the kernel no FIN_WAIT state.
			_ = c.SetLinger(0)
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.handleTCP(svc, c, client)
	}
}

// admit applies the service's defences to a new connection or session and
// counts it as open when it passes.
func (s *Server) admit(svc *service, client netip.Addr) bool {
	if svc.limiter != nil && !svc.limiter.allow(client) {
		svc.counters.drops[dropRate].Add(1)
		return false
	}
	if n := svc.counters.open.Add(1); svc.maxConns > 0 && n > svc.maxConns {
		svc.counters.open.Add(-1)
		svc.counters.drops[dropMaxConns].Add(1)
		return false
	}
	return true
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// tcpPair is one proxied connection: the two sockets and a waiter for
// each direction.
type tcpPair struct {
	srv             *Server
	c               *conn
	client, backend *net.TCPConn
	clientW, backW  *waiter
	clientR, backR  io.LimitedReader
	done            atomic.Int32
}

func (s *Server) handleTCP(svc *service, cc *net.TCPConn, client netip.AddrPort) {
	vip := addrPortOf(cc.LocalAddr())
	fail := func(reason int) {
		svc.counters.drops[reason].Add(1)
		svc.counters.open.Add(-1)
		_ = cc.SetLinger(0)
		cc.Close()
		s.wg.Done()
	}
	crc, err := cc.SyscallConn()
	if err != nil {
		fail(dropNoBackend)
		return
	}
	cw := newWaiter(crc)
	if svc.firstByte > 0 {
		// Defence against clients that connect and say nothing: no
		// backend is dialled until the client has sent a byte.
		_ = cc.SetReadDeadline(time.Now().Add(svc.firstByte))
		if n, err := cw.wait(); err != nil || n == 0 {
			fail(dropFirstByte)
			return
		}
	}
	b, bc := s.dialTCP(svc, client, vip)
	if bc == nil {
		fail(dropNoBackend)
		return
	}
	if svc.proxyVersion != 0 {
		h := proxyproto.HeaderProxyFromAddrs(svc.proxyVersion, net.TCPAddrFromAddrPort(client), net.TCPAddrFromAddrPort(vip))
		_ = bc.SetWriteDeadline(time.Now().Add(svc.connectTimeout))
		if _, err := h.WriteTo(bc); err != nil {
			bc.Close()
			b.Active.Add(-1)
			fail(dropDial)
			return
		}
	}
	brc, err := bc.SyscallConn()
	if err != nil {
		bc.Close()
		b.Active.Add(-1)
		fail(dropDial)
		return
	}
	now := time.Now().UnixNano()
	d := svc.counters.dest(b)
	c := &conn{proto: "tcp", svc: svc, dest: d, client: client, vip: vip, local: addrPortOf(bc.LocalAddr()), backend: b, start: now}
	c.last.Store(now)
	p := &tcpPair{srv: s, c: c, client: cc, backend: bc, clientW: cw, backW: newWaiter(brc)}
	c.closer = p.abort
	p.clientR.R, p.backR.R = cc, bc
	svc.counters.conns.Add(1)
	svc.counters.active.Add(1)
	d.conns.Add(1)
	d.active.Add(1)
	s.conns.add(c)
	go p.pipe(cc, bc, p.backW, &p.backR, &c.out, &svc.counters.outBytes, &d.outBytes)
	p.pipe(bc, cc, p.clientW, &p.clientR, &c.in, &svc.counters.inBytes, &d.inBytes)
}

// dialTCP picks a backend and connects to it, trying up to dialAttempts
// picks and then the sorry server. The backend's Active count includes the
// connection from the pick on, so least-connection schedulers see it.
func (s *Server) dialTCP(svc *service, client, vip netip.AddrPort) (*upstream.Backend, *net.TCPConn) {
	dialer := net.Dialer{Timeout: svc.connectTimeout}
	for range dialAttempts {
		b := svc.choose(client, vip)
		if b == nil {
			break
		}
		if c := s.dialOne(svc, &dialer, b); c != nil {
			return b, c
		}
	}
	if svc.sorry != nil {
		if c := s.dialOne(svc, &dialer, svc.sorry); c != nil {
			return svc.sorry, c
		}
	}
	return nil, nil
}

func (s *Server) dialOne(svc *service, dialer *net.Dialer, b *upstream.Backend) *net.TCPConn {
	b.Active.Add(1)
	c, err := dialer.Dial("tcp", b.Addr)
	if err != nil {
		b.Active.Add(-1)
		b.Failures.Add(1)
		svc.counters.drops[dropDial].Add(1)
		if s.passive != nil && b != svc.sorry {
			s.passive.Failure(b)
		}
		s.log.Debug("connecting to backend", "service", svc.name, "backend", b.Name, "err", err)
		return nil
	}
	b.Requests.Add(1)
	if s.passive != nil && b != svc.sorry {
		s.passive.Success(b)
	}
	return c.(*net.TCPConn)
}

// pipe copies src to dst until src ends, then half-closes dst. Each round
// waits for src to have data — holding nothing while the connection is
// idle — and then splices what is queued, at most maxChunk. The read
// deadline is the idle timeout of the connection's state; when it passes,
// the connection closes unless the other direction moved bytes meanwhile.
func (p *tcpPair) pipe(dst, src *net.TCPConn, w *waiter, lr *io.LimitedReader, connBytes, svcBytes, destBytes *atomic.Uint64) {
	c := p.c
	for {
		idle := c.svc.idleTimeout(c.state.Load())
		_ = src.SetReadDeadline(time.Now().Add(idle))
		n, err := w.wait()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				idle = c.svc.idleTimeout(c.state.Load())
				if time.Since(time.Unix(0, c.last.Load())) < idle {
					continue // the other direction is busy: not idle
				}
			}
			p.abort()
			break
		}
		if n == 0 {
			p.halfClose(dst)
			break
		}
		lr.N = int64(min(n, maxChunk))
		_ = dst.SetWriteDeadline(time.Now().Add(idle))
		m, err := dst.ReadFrom(lr)
		if m > 0 {
			connBytes.Add(uint64(m))
			svcBytes.Add(uint64(m))
			destBytes.Add(uint64(m))
			c.touch(time.Now().UnixNano())
		}
		if err != nil {
			p.abort()
			break
		}
	}
	p.finish()
}

// halfClose passes a FIN on: dst will get no more data, and the
// connection moves to FIN_WAIT with its shorter idle timeout.
func (p *tcpPair) halfClose(dst *net.TCPConn) {
	_ = dst.CloseWrite()
	c := p.c
	if c.state.CompareAndSwap(stateEstablished, stateFinWait) {
		c.svc.counters.active.Add(-1)
		c.svc.counters.inactive.Add(1)
		c.dest.active.Add(-1)
		c.dest.inactive.Add(1)
		// The other direction waits with the established timeout; cut it
		// to the FIN_WAIT one.
		fin := time.Now().Add(c.svc.finIdle)
		_ = p.client.SetReadDeadline(fin)
		_ = p.backend.SetReadDeadline(fin)
	}
}

// abort ends both directions at once.
func (p *tcpPair) abort() {
	p.client.Close()
	p.backend.Close()
}

// finish runs as each direction ends; the second one tears down.
func (p *tcpPair) finish() {
	if p.done.Add(1) != 2 {
		return
	}
	p.client.Close()
	p.backend.Close()
	c := p.c
	switch c.state.Swap(stateClosed) {
	case stateEstablished:
		c.svc.counters.active.Add(-1)
		c.dest.active.Add(-1)
	case stateFinWait:
		c.svc.counters.inactive.Add(-1)
		c.dest.inactive.Add(-1)
	}
	c.backend.Active.Add(-1)
	c.svc.counters.open.Add(-1)
	p.srv.conns.remove(c)
	p.srv.wg.Done()
}
