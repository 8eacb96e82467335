package dnslb

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-lb/strata/internal/sockopt"
)

// listener is one address served over UDP (several SO_REUSEPORT sockets,
// one reader each, so the kernel spreads queries over the cores) and TCP.
type listener struct {
	s       *Server
	sockets int // as configured (a port of 0 gets one socket whatever it says)
	udp     []*net.UDPConn
	tcp     *net.TCPListener
	wg      sync.WaitGroup
	closed  atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	nconn atomic.Int64
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// udpRecvBuffer is the receive buffer each UDP socket asks for, so that
// a burst of queries that arrives while a reader is off the CPU waits
// rather than being dropped (see internal/sockopt).
const udpRecvBuffer = 4 << 20

// listen binds addr. With port 0 the UDP sockets and the TCP listener
// share the one port the kernel chose, retrying if TCP finds it taken.
func (s *Server) listen(addr string, sockets int) (*listener, error) {
	var lastErr error
	for try := 0; try < 8; try++ {
		l, err := s.listenOnce(addr, sockets)
		if err == nil {
			return l, nil
		}
		lastErr = err
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			break
		}
	}
	return nil, lastErr
}

func (s *Server) listenOnce(addr string, sockets int) (*listener, error) {
	lc, n := net.ListenConfig{Control: reusePort}, sockets
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		// Linux hands an ephemeral port to an SO_REUSEPORT socket even
		// when another process's SO_REUSEPORT sockets hold it (same
		// user), and the kernel then splits that port's queries between
		// the two. A port chosen by the kernel therefore gets one plain
		// socket; SO_REUSEPORT is for ports named in the config.
		lc, n = net.ListenConfig{}, 1
	}
	l := &listener{s: s, sockets: sockets, conns: map[net.Conn]struct{}{}}
	fail := func(err error) (*listener, error) {
		for _, u := range l.udp {
			u.Close()
		}
		if l.tcp != nil {
			l.tcp.Close()
		}
		return nil, err
	}
	bind := addr
	for i := 0; i < n; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", bind)
		if err != nil {
			return fail(err)
		}
		u := pc.(*net.UDPConn)
		sockopt.GrowReceiveBuffer(u, udpRecvBuffer)
		l.udp = append(l.udp, u)
		// Later sockets join the port the first one got.
		bind = u.LocalAddr().String()
	}
	// SO_REUSEPORT on TCP too, so a listener replaced on reload (a new
	// socket count) can bind before the old one lets go.
	tl, err := lc.Listen(context.Background(), "tcp", bind)
	if err != nil {
		return fail(err)
	}
	l.tcp = tl.(*net.TCPListener)
	return l, nil
}

func (l *listener) addr() string { return l.udp[0].LocalAddr().String() }

func (l *listener) serve() {
	for i, u := range l.udp {
		l.wg.Add(1)
		go l.serveUDP(u, i)
	}
	l.wg.Add(1)
	go l.serveTCP()
}

func (l *listener) close() {
	if l.closed.Swap(true) {
		return
	}
	for _, u := range l.udp {
		u.Close()
	}
	l.tcp.Close()
}

func (l *listener) wait() { l.wg.Wait() }

func (l *listener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

func (l *listener) newWorker() *worker {
	shard := int(l.s.seq.Add(1))
	return newWorker(shard, l.s.opts.Seed)
}

// serveUDPSimple answers one datagram per system call each way; Linux
// uses the batched reader in udp_linux.go instead.
func (l *listener) serveUDPSimple(u *net.UDPConn) {
	w := l.newWorker()
	buf := make([]byte, 65535)
	for {
		n, from, err := u.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp := l.s.handle(w, buf[:n], from, true); resp != nil {
			_, _ = u.WriteToUDPAddrPort(resp, from)
		}
	}
}

func (l *listener) serveTCP() {
	defer l.wg.Done()
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off a little rather
			// than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		lim := l.s.limits.Load()
		if l.nconn.Load() >= int64(lim.maxConns) {
			// Bounded: a connection over the limit is closed at once,
			// and the client retries or gives up.
			c.Close()
			continue
		}
		l.nconn.Add(1)
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.serveConn(c)
	}
}

// serveConn answers length-prefixed messages (RFC 7766) in order until the
// client closes, stays idle too long, or the listener closes.
func (l *listener) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		l.nconn.Add(-1)
		l.wg.Done()
	}()
	w := l.newWorker()
	var client netip.AddrPort
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = ta.AddrPort()
	}
	br := bufio.NewReaderSize(c, 4096)
	msg := make([]byte, 65535)
	out := make([]byte, 0, 65537)
	for !l.closed.Load() {
		_ = c.SetReadDeadline(time.Now().Add(l.s.limits.Load().idle))
		var lb [2]byte
		if _, err := io.ReadFull(br, lb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(br, msg[:n]); err != nil {
			return
		}
		if isTransfer(w, msg[:n]) {
			_ = c.SetWriteDeadline(time.Now().Add(l.s.limits.Load().idle))
			err := l.s.transfer(c, msg[:n], client.Addr())
			if err == nil {
				continue
			}
			if !errors.Is(err, errNotOffered) {
				return
			}
		}
		resp := l.s.handle(w, msg[:n], client, false)
		if resp == nil {
			continue
		}
		if len(resp) > 65535 {
			w.r.truncate(&w.q)
			resp = w.r.buf
		}
		out = append(out[:0], byte(len(resp)>>8), byte(len(resp)))
		out = append(out, resp...)
		_ = c.SetWriteDeadline(time.Now().Add(l.s.limits.Load().idle))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
