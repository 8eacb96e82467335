package registry

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// closingStream wraps a Raft stream layer so that Close ends every
// connection it accepted or dialled, not only the listener. Raft's
// NetworkTransport leaves them open, so after a node stops, the goroutines
// that serve its peers' connections (and the peers' pooled connections to
// it) live on until a peer happens to send something. A stopped node now
// lets go of its sockets as a stopped process does.
type closingStream struct {
	raft.StreamLayer

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

var _ raft.StreamLayer = (*closingStream)(nil)

func closing(s raft.StreamLayer) *closingStream {
	return &closingStream{StreamLayer: s, conns: map[*trackedConn]struct{}{}}
}

// Dial implements raft.StreamLayer.
func (s *closingStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := s.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

// Accept implements net.Listener.
func (s *closingStream) Accept() (net.Conn, error) {
	c, err := s.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

func (s *closingStream) track(c net.Conn) (net.Conn, error) {
	t := &trackedConn{Conn: c, s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	s.conns[t] = struct{}{}
	return t, nil
}

// Close implements net.Listener: the listener, then every connection.
func (s *closingStream) Close() error {
	err := s.StreamLayer.Close()
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[*trackedConn]struct{}{}
	s.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
	return err
}

// trackedConn leaves its stream's set when closed.
type trackedConn struct {
	net.Conn
	s *closingStream
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// tcpStream is plaintext TCP, as raft's TCPStreamLayer (which cannot be
// made outside its package).
type tcpStream struct {
	ln        net.Listener
	advertise net.Addr
}

func newTCPStream(bind string, advertise net.Addr) (*tcpStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &tcpStream{ln: ln, advertise: advertise}
	// Peers dial the address the node gives them: it must be one they
	// can reach, as raft's own constructor insists.
	if a, ok := s.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, errors.New("local bind address is not advertisable")
	}
	return s, nil
}

func (s *tcpStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

func (s *tcpStream) Accept() (net.Conn, error) { return s.ln.Accept() }

func (s *tcpStream) Close() error { return s.ln.Close() }

func (s *tcpStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}
