package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strata-lb/strata/internal/config"
)

// testCA is a certificate authority for Raft's mutual TLS in tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a certificate for 127.0.0.1 that serves both sides of a
// connection, and returns its PEM and its key's PEM.
func (ca *testCA) issue(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "raft peer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// files writes a peer's certificate, key and the CA as a config names
// them, the key readable by its owner only.
func (ca *testCA) files(t *testing.T, dir string) *config.RegistryRaftTLS {
	t.Helper()
	certPEM, keyPEM := ca.issue(t)
	c := &config.RegistryRaftTLS{CertFile: filepath.Join(dir, "raft.pem"), KeyFile: filepath.Join(dir, "raft.key"), CAFile: filepath.Join(dir, "ca.pem")}
	for _, f := range []struct {
		path string
		data []byte
	}{{c.CertFile, certPEM}, {c.KeyFile, keyPEM}, {c.CAFile, ca.pem}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestRaftMutualTLS: two nodes replicate over mutual TLS, and the Raft
// port refuses an RPC from a peer without a certificate, from a peer
// whose certificate another CA signed, and from a plaintext peer, while
// the same RPC from a peer with a certificate from the CA is answered.
func TestRaftMutualTLS(t *testing.T) {
	ca := newTestCA(t, "raft ca")
	load := func() *tls.Config {
		c, err := RaftTLSConfig(ca.files(t, t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := startNode(t, Options{RaftTLS: load()})
	b := startNode(t, Options{RaftTLS: load(), Join: []string{a.ID()}})
	waitFor(t, 10*time.Second, "two members", func() bool { return len(a.Members()) == 2 })
	waitFor(t, 5*time.Second, "the follower to know the leader", func() bool { return b.Leader() == a.ID() })
	// A write answered 503 (an election under a loaded machine's timing)
	// is one the API asks clients to retry; the condition is that the
	// cluster takes the write.
	waitFor(t, 10*time.Second, "the cluster to take a write through the follower", func() bool {
		code, _, _ := do(t, "PUT", "http://"+b.ID()+"/v1/registry/instances", "", map[string]any{"service": "web", "ip": "127.0.0.1", "port": 80})
		return code == 200
	})
	waitFor(t, 5*time.Second, "the registration to replicate over TLS", func() bool {
		v, ok := b.Store().Get(Key{Service: "web"})
		return ok && len(v.Instances) == 1
	})

	// An AppendEntries of term 0 is harmless: a member answers it with
	// Success false; an RPC error means the connection was refused.
	req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")}}
	rpc := func(stream raft.StreamLayer) error {
		tr := raft.NewNetworkTransport(stream, 1, 2*time.Second, io.Discard)
		defer tr.Close()
		var resp raft.AppendEntriesResponse
		return tr.AppendEntries(raft.ServerID(a.ID()), raft.ServerAddress(a.RaftAddr()), req, &resp)
	}
	tlsPeer := func(conf *tls.Config) raft.StreamLayer {
		s, err := newTLSStreamLayer("127.0.0.1:0", nil, conf)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := load()
	if err := rpc(tlsPeer(good)); err != nil {
		t.Fatalf("a peer with a certificate from the CA was refused: %v", err)
	}
	noCert := good.Clone()
	noCert.Certificates = nil
	if err := rpc(tlsPeer(noCert)); err == nil {
		t.Error("a peer without a client certificate was answered")
	}
	rogue := newTestCA(t, "rogue ca")
	rc, rk := rogue.issue(t)
	rcert, err := tls.X509KeyPair(rc, rk)
	if err != nil {
		t.Fatal(err)
	}
	other := good.Clone()
	other.Certificates = []tls.Certificate{rcert}
	if err := rpc(tlsPeer(other)); err == nil {
		t.Error("a peer with a certificate from another CA was answered")
	}
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var resp raft.AppendEntriesResponse
	if err := plain.AppendEntries(raft.ServerID(a.ID()), raft.ServerAddress(a.RaftAddr()), req, &resp); err == nil {
		t.Error("a plaintext peer was answered")
	}
	if len(a.Members()) != 2 {
		t.Errorf("members after the attempts: %v", a.Members())
	}
}

// TestRaftPlaintextStaysOnLoopback: without TLS, Raft refuses to bind off
// loopback unless marked insecure; a world-readable key is refused.
func TestRaftPlaintextStaysOnLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(ln, Options{RaftAddr: "0.0.0.0:0", Advertise: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "registry.raft.tls") {
		t.Fatalf("plaintext Raft on 0.0.0.0: err = %v", err)
	}
	c := newTestCA(t, "ca").files(t, t.TempDir())
	if err := os.Chmod(c.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RaftTLSConfig(c); err == nil || !strings.Contains(err.Error(), "world-readable") || !strings.Contains(err.Error(), "registry.raft.tls.key_file") {
		t.Fatalf("world-readable key: err = %v", err)
	}
}
