package l4

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/strata-lb/strata/internal/netpark"
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

// defaultParkAfter is how long a direction's goroutine waits in the
// netpoller for more bytes before it parks (Server.parkAfter): long enough
// that a request-response exchange does not park between the request and
// the response, short enough that few goroutines of connections that went
// quiet are alive at once.
const defaultParkAfter = 200 * time.Millisecond

// tcpPair is one proxied connection: the two sockets and a pump for each
// direction. Its idle timeout is Server.sweep's: no timer of its own.
type tcpPair struct {
	srv             *Server
	conn            conn
	client, backend *net.TCPConn
	in, out         pump // client to backend, backend to client
	done            atomic.Int32
	// mu orders a pump's parking against abort.
	mu sync.Mutex
}

// pump moves the bytes of one direction. It is embedded in its tcpPair so
// that a connection is a few allocations, not one per part, and it keeps
// its fields few: 10,000 idle connections hold 20,000 of them.
type pump struct {
	p        *tcpPair
	src, dst *net.TCPConn
	rc       syscall.RawConn // src's
	// fn is the one callback given to rc, built once so that waiting
	// and parking do not allocate; mode says what it does.
	fn    func(fd uintptr) bool
	lr    io.LimitedReader
	avail int
	err   error
	// park is the pump's place in the server's parker: a parked pump has
	// no goroutine, its source armed in the epoll set, and whoever moves
	// it out of netpark.Parked (an event, or abort) owns it.
	park netpark.Item
	mode uint8
	in   bool // client to backend
}

// What a pump's callback does with the source's descriptor.
const (
	modeWait uint8 = iota // report queued bytes; false (wait) when none
	modePoll              // the same, but never wait: avail -1 when none
)

func (u *pump) init(p *tcpPair, src, dst *net.TCPConn, rc syscall.RawConn, in bool) {
	u.p, u.src, u.dst, u.rc, u.in = p, src, dst, rc, in
	u.fn = u.onFD
	u.lr.R = src
	u.park.Init(u)
}

// onFD runs with the source's descriptor held open by the runtime, so the
// number cannot be another socket's meanwhile.
func (u *pump) onFD(fd uintptr) bool {
	n, ok, err := queued(fd)
	if !ok && u.mode == modePoll {
		n, ok = -1, true
	}
	u.avail, u.err = n, err
	return ok
}

// next returns how many bytes src has queued (0: the end of the stream),
// or -1 when none are and wait is false; with wait it blocks until there
// are, within src's read deadline.
func (u *pump) next(wait bool) (int, error) {
	u.mode = modePoll
	if wait {
		u.mode = modeWait
	}
	u.avail, u.err = 0, nil
	if err := u.rc.Read(u.fn); err != nil {
		return 0, err
	}
	return u.avail, u.err
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
	p := &tcpPair{srv: s, client: cc}
	if svc.firstByte > 0 {
		// Defence against clients that connect and say nothing: no
		// backend is dialled until the client has sent a byte.
		_ = cc.SetReadDeadline(time.Now().Add(svc.firstByte))
		p.in.rc, p.in.fn = crc, p.in.onFD
		if n, err := p.in.next(true); err != nil || n == 0 {
			fail(dropFirstByte)
			return
		}
		_ = cc.SetReadDeadline(time.Time{})
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
		_ = bc.SetWriteDeadline(time.Time{})
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
	p.backend = bc
	c := &p.conn
	*c = conn{proto: "tcp", svc: svc, dest: d, client: client, vip: vip, local: addrPortOf(bc.LocalAddr()), backend: b, start: now}
	c.last.Store(now)
	c.closer = p.abort
	p.in.init(p, cc, bc, crc, true)
	p.out.init(p, bc, cc, brc, false)
	svc.counters.conns.Add(1)
	svc.counters.active.Add(1)
	d.conns.Add(1)
	d.active.Add(1)
	s.conns.add(c)
	go p.out.run()
	p.in.run()
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

// run copies src to dst until src ends, then half-closes dst. Each round
// waits for src to have data — holding no buffer while the connection is
// quiet — and then splices what is queued, at most maxChunk. When src has
// been quiet for Server.parkAfter, the pump parks and its goroutine ends.
func (u *pump) run() {
	p := u.p
	c := &p.conn
	pk := p.srv.parker
	for {
		n, err := u.next(false)
		if err == nil && n < 0 {
			// Nothing queued: wait in the netpoller for a while, then
			// park. Without a parker, wait as long as it takes; the
			// idle timer ends the wait when the connection is idle.
			if pk != nil {
				_ = u.src.SetReadDeadline(time.Now().Add(p.srv.parkAfter))
				n, err = u.next(true)
				if err == nil {
					// The splice's reads obey the deadline too.
					_ = u.src.SetReadDeadline(time.Time{})
				}
			} else {
				n, err = u.next(true)
			}
		}
		if err != nil {
			if pk != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				if u.parkIn(pk) {
					return
				}
				continue // closed meanwhile: the next wait says so
			}
			p.abort()
			break
		}
		if n == 0 {
			p.halfClose(u.dst)
			break
		}
		u.lr.N = int64(min(n, maxChunk))
		m, err := u.dst.ReadFrom(&u.lr)
		if m > 0 {
			u.count(uint64(m))
			c.touch(time.Now().UnixNano())
		}
		if err != nil {
			p.abort()
			break
		}
	}
	u.park.State.Store(netpark.Done)
	p.finish()
}

// Resume runs a pump that an event took out of the parked state
// (netpark.Resumer).
func (u *pump) Resume() { u.run() }

// parkIn arms the source in the parker's epoll set and reports whether the
// pump is no longer this goroutine's: parked (an event restarts it), or
// taken by abort. It reports false when the socket closed before it could
// be armed and the pump is still this goroutine's to finish.
func (u *pump) parkIn(pk *netpark.Parker) bool {
	// The deadline that sent the pump here has passed; the next run
	// starts without one.
	_ = u.src.SetReadDeadline(time.Time{})
	// Under the pair's lock, so that abort, which takes a parked pump
	// over, sees it either before it parks or armed.
	p := u.p
	p.mu.Lock()
	ok := u.park.Park(pk, u.rc)
	p.mu.Unlock()
	return ok
}

// count adds m bytes to the connection's, the service's and the
// backend's counters of this direction.
func (u *pump) count(m uint64) {
	c := &u.p.conn
	if u.in {
		c.in.Add(m)
		c.svc.counters.inBytes.Add(m)
		c.dest.inBytes.Add(m)
	} else {
		c.out.Add(m)
		c.svc.counters.outBytes.Add(m)
		c.dest.outBytes.Add(m)
	}
}

// halfClose passes a FIN on: dst will get no more data, and the
// connection moves to FIN_WAIT with its shorter idle timeout.
func (p *tcpPair) halfClose(dst *net.TCPConn) {
	_ = dst.CloseWrite()
	c := &p.conn
	if c.state.CompareAndSwap(stateEstablished, stateFinWait) {
		c.svc.counters.active.Add(-1)
		c.svc.counters.inactive.Add(1)
		c.dest.active.Add(-1)
		c.dest.inactive.Add(1)
		// The FIN is traffic: the shorter FIN_WAIT timeout counts from
		// it, as LVS restarts a connection's timer on every packet.
		c.touch(time.Now().UnixNano())
	}
}

// abort ends both directions at once. A running direction sees its
// sockets close; a parked one has no goroutine to see it, so abort
// finishes it.
func (p *tcpPair) abort() {
	p.client.Close()
	p.backend.Close()
	p.mu.Lock()
	in := p.in.park.State.CompareAndSwap(netpark.Parked, netpark.Done)
	out := p.out.park.State.CompareAndSwap(netpark.Parked, netpark.Done)
	p.mu.Unlock()
	if in {
		p.finish()
	}
	if out {
		p.finish()
	}
}

// finish runs as each direction ends; the second one tears down.
func (p *tcpPair) finish() {
	if p.done.Add(1) != 2 {
		return
	}
	p.client.Close()
	p.backend.Close()
	p.in.park.Forget()
	p.out.park.Forget()
	c := &p.conn
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
