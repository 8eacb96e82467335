package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// writeRaftPKI writes a CA and one certificate for 127.0.0.1 (server and
// client authentication) with its key, readable by the owner only, and
// returns the three paths.
func writeRaftPKI(t *testing.T, dir string) (certPath, keyPath, caPath string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raft ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "raft"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath, caPath = filepath.Join(dir, "raft.pem"), filepath.Join(dir, "raft.key"), filepath.Join(dir, "ca.pem")
	for p, b := range map[string][]byte{
		certPath: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPath:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}),
		caPath:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certPath, keyPath, caPath
}

// TestRegistrySecuredOneLiners runs three `strata registry` processes with
// the admin token from a file and Raft over mutual TLS: curl without the
// token registers nothing, curl with it registers through a follower; one
// node is killed and `strata registry remove-peer` leaves a cluster of two
// that still takes writes.
func TestRegistrySecuredOneLiners(t *testing.T) {
	testnet.NeedTool(t, "curl", "curl")
	dir := t.TempDir()
	cert, key, ca := writeRaftPKI(t, dir)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("e2e-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var http_ []string
	procs := make([]*exec.Cmd, 3)
	outs := make([]*lockedBuffer, 3)
	for i := 0; i < 3; i++ {
		http_ = append(http_, freePort(t))
		args := []string{"registry", "--listen", http_[i], "--raft", freePort(t), "--data", filepath.Join(dir, strconv.Itoa(i)),
			"--token-file", tokenFile, "--raft-tls-cert", cert, "--raft-tls-key", key, "--raft-tls-ca", ca}
		if i > 0 {
			args = append(args, "--join", http_[0])
		}
		procs[i], outs[i] = startRegistryArgs(t, http_[i], args)
	}
	eventually(t, 15*time.Second, "a cluster of three", func() bool {
		c, err := cluster(http_[2])
		return err == nil && len(c.Members) == 3 && c.Leader != ""
	})

	reg := func(node, ip string, token bool) (string, error) {
		args := []string{"-sS", "--fail-with-body", "-X", "PUT", "http://" + node + "/v1/registry/instances", "-d", `{"service":"web","ip":"` + ip + `","port":80}`}
		if token {
			args = append(args, "-H", "Authorization: Bearer e2e-s3cret")
		}
		out, err := exec.Command(testnet.NeedTool(t, "curl", "curl"), args...).CombinedOutput()
		return string(out), err
	}
	if out, err := reg(http_[1], "127.0.0.1", false); err == nil || !strings.Contains(out, "needs the admin token") {
		t.Fatalf("anonymous curl: %v %s", err, out)
	}
	c, _ := cluster(http_[0])
	follower := -1
	for i, a := range http_ {
		if a != c.Leader && follower < 0 {
			follower = i
		}
	}
	eventually(t, 10*time.Second, "curl with the token through a follower", func() bool {
		_, err := reg(http_[follower], "127.0.0.1", true)
		return err == nil
	})

	// Kill a follower other than the one curl uses, then remove it.
	dead := -1
	for i, a := range http_ {
		if a != c.Leader && i != follower {
			dead = i
		}
	}
	procs[dead].Process.Signal(syscall.SIGKILL)
	procs[dead].Wait()
	out, err := exec.Command(strataBin, "registry", "remove-peer", http_[dead], "--server", http_[follower], "--token-file", tokenFile).CombinedOutput()
	if err != nil {
		t.Fatalf("remove-peer: %v\n%s", err, out)
	}
	eventually(t, 5*time.Second, "a cluster of two", func() bool {
		c, err := cluster(http_[follower])
		return err == nil && len(c.Members) == 2
	})
	if out, err := reg(http_[follower], "127.0.0.2", true); err != nil {
		t.Fatalf("a write after the removal: %v %s", err, out)
	}
	for i, o := range outs {
		if strings.Contains(o.String(), "e2e-s3cret") {
			t.Errorf("node %d logged the token", i)
		}
	}
}
