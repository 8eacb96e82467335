package l4

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

// maxDatagram is the largest UDP payload relayed.
const maxDatagram = 64 << 10

// udpRecvBuffer is the receive buffer a UDP service's socket asks for
// (internal/sockopt): the kernel's default holds a few hundred datagrams.
const udpRecvBuffer = 4 << 20

var datagramPool = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// udpSession is one client's flow through a UDP service: datagrams from
// the client go out on a socket connected to its backend, and replies on
// that socket go back to the client from the service's address.
type udpSession struct {
	c      *conn
	l      *listener
	back   *net.UDPConn
	w      *waiter
	closed atomic.Bool
}

type udpShard struct {
	mu sync.Mutex
	m  map[netip.AddrPort]*udpSession
}

// udpTable is a UDP listener's sessions, keyed by client address.
type udpTable struct {
	shards [32]udpShard
}

func newUDPTable() *udpTable {
	t := &udpTable{}
	for i := range t.shards {
		t.shards[i].m = map[netip.AddrPort]*udpSession{}
	}
	return t
}

func (t *udpTable) shard(a netip.AddrPort) *udpShard {
	return &t.shards[addrKey(a.Addr(), a.Port(), true)%uint64(len(t.shards))]
}

// serveUDP runs the readers of one UDP listener: several goroutines read
// the one socket, so datagrams from many clients are relayed in parallel.
func (s *Server) serveUDP(l *listener) {
	defer s.wg.Done()
	defer close(l.done)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), 4)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.readUDP(l)
		}()
	}
	wg.Wait()
	// The socket is gone, so no reply could reach a client: end every
	// session of this listener.
	for i := range l.udp.shards {
		sh := &l.udp.shards[i]
		sh.mu.Lock()
		sessions := make([]*udpSession, 0, len(sh.m))
		for _, u := range sh.m {
			sessions = append(sessions, u)
		}
		sh.mu.Unlock()
		for _, u := range sessions {
			u.back.Close()
		}
	}
}

func (s *Server) readUDP(l *listener) {
	bp := datagramPool.Get().(*[]byte)
	defer datagramPool.Put(bp)
	buf := *bp
	for {
		n, client, err := l.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors and the like concern one datagram
		}
		u := s.udpSession(l, client)
		if u == nil {
			continue
		}
		c := u.c
		if _, err := u.back.Write(buf[:n]); err != nil {
			continue
		}
		c.in.Add(uint64(n))
		c.touch(time.Now().UnixNano())
		c.svc.counters.inPkts.Add(1)
		c.svc.counters.inBytes.Add(uint64(n))
		c.dest.inPkts.Add(1)
		c.dest.inBytes.Add(uint64(n))
	}
}

// udpSession returns the client's session, making one if it has none; nil
// means the datagram is dropped.
func (s *Server) udpSession(l *listener, client netip.AddrPort) *udpSession {
	sh := l.udp.shard(client)
	sh.mu.Lock()
	u := sh.m[client]
	sh.mu.Unlock()
	if u != nil && !u.closed.Load() {
		return u
	}
	svc := l.svc.Load()
	if !s.admit(svc, client.Addr()) {
		return nil
	}
	vip := addrPortOf(l.pc.LocalAddr())
	b, back := s.dialUDP(svc, client, vip)
	if back == nil {
		svc.counters.drops[dropNoBackend].Add(1)
		svc.counters.open.Add(-1)
		return nil
	}
	rc, err := back.SyscallConn()
	if err != nil {
		back.Close()
		b.Active.Add(-1)
		svc.counters.open.Add(-1)
		return nil
	}
	now := time.Now().UnixNano()
	d := svc.counters.dest(b)
	c := &conn{proto: "udp", svc: svc, dest: d, client: client, vip: vip, backend: b, start: now}
	c.last.Store(now)
	c.state.Store(stateUDP)
	u = &udpSession{c: c, l: l, back: back, w: newWaiter(rc)}
	c.closer = func() { back.Close() }
	sh.mu.Lock()
	if prev := sh.m[client]; prev != nil && !prev.closed.Load() {
		// Another reader made the session first; use that one.
		sh.mu.Unlock()
		back.Close()
		b.Active.Add(-1)
		svc.counters.open.Add(-1)
		return prev
	}
	sh.m[client] = u
	sh.mu.Unlock()
	svc.counters.conns.Add(1)
	svc.counters.inactive.Add(1)
	d.conns.Add(1)
	d.inactive.Add(1)
	s.conns.add(c)
	s.wg.Add(1)
	go s.udpReplies(u)
	return u
}

func (s *Server) dialUDP(svc *service, client, vip netip.AddrPort) (*upstream.Backend, *net.UDPConn) {
	for range dialAttempts {
		b := svc.choose(client, vip)
		if b == nil {
			break
		}
		b.Active.Add(1)
		c, err := net.Dial("udp", b.Addr)
		if err != nil {
			b.Active.Add(-1)
			b.Failures.Add(1)
			if s.passive != nil {
				s.passive.Failure(b)
			}
			continue
		}
		b.Requests.Add(1)
		return b, c.(*net.UDPConn)
	}
	if b := svc.sorry; b != nil {
		if c, err := net.Dial("udp", b.Addr); err == nil {
			b.Active.Add(1)
			return b, c.(*net.UDPConn)
		}
	}
	return nil, nil
}

// udpReplies relays the backend's replies to the client until the session
// has been idle for the udp timeout. It takes a buffer only while a reply
// is waiting, so idle sessions cost no buffer.
func (s *Server) udpReplies(u *udpSession) {
	c := u.c
	idle := c.svc.udpIdle
	for {
		_ = u.back.SetReadDeadline(time.Now().Add(idle))
		if _, err := u.w.wait(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, c.last.Load())) < idle {
				continue // the client is still sending
			}
			break
		}
		bp := datagramPool.Get().(*[]byte)
		n, err := u.back.Read(*bp)
		if err != nil {
			datagramPool.Put(bp)
			if errors.Is(err, net.ErrClosed) {
				break
			}
			// A refused datagram (ICMP port unreachable) tells a
			// connected socket the backend is not listening.
			c.backend.Failures.Add(1)
			if s.passive != nil && c.backend != c.svc.sorry {
				s.passive.Failure(c.backend)
			}
			continue
		}
		_, err = u.l.pc.WriteToUDPAddrPort((*bp)[:n], c.client)
		datagramPool.Put(bp)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			continue // the client's side refused one datagram
		}
		c.out.Add(uint64(n))
		c.touch(time.Now().UnixNano())
		c.svc.counters.outPkts.Add(1)
		c.svc.counters.outBytes.Add(uint64(n))
		c.dest.outPkts.Add(1)
		c.dest.outBytes.Add(uint64(n))
	}
	u.closed.Store(true)
	u.back.Close()
	sh := u.l.udp.shard(c.client)
	sh.mu.Lock()
	if sh.m[c.client] == u {
		delete(sh.m, c.client)
	}
	sh.mu.Unlock()
	c.state.Store(stateClosed)
	c.svc.counters.inactive.Add(-1)
	c.dest.inactive.Add(-1)
	c.backend.Active.Add(-1)
	c.svc.counters.open.Add(-1)
	s.conns.remove(c)
	s.wg.Done()
}
