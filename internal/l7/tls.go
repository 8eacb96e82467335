package l7

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-lb/strata/internal/config"
)

// certSet is one immutable set of certificates with its SNI index. The
// listener's certStore swaps whole sets, so a handshake reads one atomic
// pointer and never sees a half-loaded set.
type certSet struct {
	certs    []*tls.Certificate
	exact    map[string]*tls.Certificate // lower-case DNS name → first cert naming it
	wildcard map[string]*tls.Certificate // ".example.com" for "*.example.com"
	files    []config.Certificate
	stamps   []fileStamp // of every cert and key file, to notice changes
}

// fileStamp is what polling compares to notice a changed file.
type fileStamp struct {
	mod  time.Time
	size int64
}

// loadCertSet reads and parses every certificate and indexes their names.
func loadCertSet(files []config.Certificate) (*certSet, error) {
	if len(files) == 0 {
		return nil, errors.New("tls needs at least one certificate")
	}
	cs := &certSet{
		exact:    map[string]*tls.Certificate{},
		wildcard: map[string]*tls.Certificate{},
		files:    append([]config.Certificate(nil), files...),
	}
	for _, f := range files {
		certPEM, err := os.ReadFile(f.CertFile)
		if err != nil {
			return nil, fmt.Errorf("loading certificate: %w", err)
		}
		keyPEM, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading certificate key: %w", err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("loading certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
		}
		leaf := c.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("parsing certificate %s: %w", f.CertFile, err)
			}
			c.Leaf = leaf
		}
		cs.certs = append(cs.certs, &c)
		names := leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if suffix, ok := strings.CutPrefix(n, "*"); ok && strings.HasPrefix(suffix, ".") {
				if _, dup := cs.wildcard[suffix]; !dup {
					cs.wildcard[suffix] = &c
				}
			} else if _, dup := cs.exact[n]; !dup {
				cs.exact[n] = &c
			}
		}
		cs.stamps = append(cs.stamps, stampOf(f.CertFile), stampOf(f.KeyFile))
	}
	return cs, nil
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}
}

// changed reports whether any file differs from when the set was loaded.
func (cs *certSet) changed() bool {
	i := 0
	for _, f := range cs.files {
		if stampOf(f.CertFile) != cs.stamps[i] || stampOf(f.KeyFile) != cs.stamps[i+1] {
			return true
		}
		i += 2
	}
	return false
}

// pick chooses the certificate for a server name: an exact name, then the
// wildcard one label up, then the first certificate.
func (cs *certSet) pick(serverName string) *tls.Certificate {
	if serverName != "" {
		name := strings.ToLower(strings.TrimSuffix(serverName, "."))
		if c := cs.exact[name]; c != nil {
			return c
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := cs.wildcard[name[i:]]; c != nil {
				return c
			}
		}
	}
	return cs.certs[0]
}

// certStore serves a listener's current certificates and reloads them
// when their files change.
type certStore struct {
	set  atomic.Pointer[certSet]
	log  *slog.Logger
	stop chan struct{}
	once sync.Once
	mu   sync.Mutex // serialises reloads (Apply and the poller)
}

// newCertStore loads files and starts polling them every interval.
func newCertStore(files []config.Certificate, interval time.Duration, log *slog.Logger) (*certStore, error) {
	cs, err := loadCertSet(files)
	if err != nil {
		return nil, err
	}
	st := &certStore{log: log, stop: make(chan struct{})}
	st.set.Store(cs)
	go st.poll(interval)
	return st, nil
}

// getCertificate is the tls.Config hook.
func (st *certStore) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return st.set.Load().pick(hello.ServerName), nil
}

// load replaces the set with files read afresh; on error the old set stays.
func (st *certStore) load(files []config.Certificate) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	cs, err := loadCertSet(files)
	if err != nil {
		return err
	}
	st.set.Store(cs)
	return nil
}

// poll reloads the certificates when a file's size or modification time
// changes, so that a renewed certificate is served without a reload. A
// set that fails to load (a key written after its certificate, say) is
// retried at the next tick while the old one keeps serving.
func (st *certStore) poll(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-st.stop:
			return
		case <-t.C:
			cur := st.set.Load()
			if !cur.changed() {
				continue
			}
			if err := st.load(cur.files); err != nil {
				st.log.Warn("reloading certificates; keeping the previous ones", "err", err)
				continue
			}
			st.log.Info("reloaded certificates after a file changed", "files", len(cur.files))
		}
	}
}

func (st *certStore) close() { st.once.Do(func() { close(st.stop) }) }

// serverTLSConfig is the listener's TLS configuration: TLS 1.2 or later,
// Go's default cipher suites (forward secrecy and AEAD only), and no
// renegotiation (Go servers never renegotiate).
func serverTLSConfig(st *certStore, http2 bool) *tls.Config {
	protos := []string{"http/1.1"}
	if http2 {
		protos = []string{"h2", "http/1.1"}
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: st.getCertificate,
		NextProtos:     protos,
	}
}
