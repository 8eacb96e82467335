package registry

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strata-lb/strata/internal/config"
)

// RaftTLSConfig loads the certificate, key and CA of mutual TLS for Raft.
// The one certificate serves both sides of every connection: it is
// presented when a peer dials this node and when this node dials a peer,
// so its extended key usage must allow server and client authentication
// (or say nothing). The key file is a secret and is refused when it is
// world-readable.
func RaftTLSConfig(c *config.RegistryRaftTLS) (*tls.Config, error) {
	certPEM, err := os.ReadFile(c.CertFile)
	if err != nil {
		return nil, fmt.Errorf("registry.raft.tls.cert_file: %w", err)
	}
	keyPEM, err := config.ReadSecretFile(c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("registry.raft.tls.key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, []byte(keyPEM))
	if err != nil {
		return nil, fmt.Errorf("registry.raft.tls: loading %s and %s: %w", c.CertFile, c.KeyFile, err)
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("registry.raft.tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("registry.raft.tls.ca_file: %s holds no PEM certificate", c.CAFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// tlsStreamLayer is Raft's transport over mutual TLS: a node accepts only
// peers presenting a certificate from the CA, and dials only peers whose
// certificate the CA signed for the address dialled.
type tlsStreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	conf      *tls.Config
}

// handshakeTimeout bounds a TLS handshake, so a peer that connects and
// says nothing does not hold a goroutine of Raft's forever.
const handshakeTimeout = 10 * time.Second

func newTLSStreamLayer(bind string, advertise net.Addr, conf *tls.Config) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &tlsStreamLayer{ln: ln, advertise: advertise, conf: conf}
	if a, ok := s.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s is not one other nodes can reach; set an advertise address", s.Addr())
	}
	return s, nil
}

// Accept returns connections whose handshake runs on their first read, in
// the goroutine Raft gives each connection, not in its accept loop.
func (s *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, s.conf)}, nil
}

func (s *tlsStreamLayer) Close() error { return s.ln.Close() }

func (s *tlsStreamLayer) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

// Dial connects to a peer and completes the handshake, verifying the
// peer's certificate against the CA and the dialled host.
func (s *tlsStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(addr))
	if err != nil {
		return nil, err
	}
	conf := s.conf.Clone()
	conf.ServerName = host
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), conf)
}

// handshakeConn is an accepted TLS connection that completes its
// handshake within handshakeTimeout on its first read.
type handshakeConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		c.Conn.SetDeadline(time.Now().Add(handshakeTimeout))
		c.err = c.Conn.Handshake()
		c.Conn.SetDeadline(time.Time{})
	})
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}
