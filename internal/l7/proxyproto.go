package l7

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/strata-lb/strata/internal/config"
)

// proxyPolicy is a listener's current PROXY protocol settings; Apply swaps
// it, so the allowed sources and the timeout change on reload.
type proxyPolicy struct {
	allow   trustList
	timeout time.Duration
}

func newProxyPolicy(pc *config.ProxyProtocol) (*proxyPolicy, error) {
	allow, err := parseTrustList(pc.Allow)
	if err != nil {
		return nil, err
	}
	t := pc.Timeout.D()
	if t <= 0 {
		t = config.DefaultProxyProtocolTimeout.D()
	}
	return &proxyPolicy{allow: allow, timeout: t}, nil
}

// proxyListener accepts PROXY protocol v1 and v2 headers. A connection
// from an allowed source must start with one, within the timeout; from
// any other source a header is refused (the connection fails on its first
// read and the server closes it), so a client cannot claim another address.
// The header is read on the connection's own goroutine, never in Accept,
// so a slow sender holds up nobody else.
type proxyListener struct {
	net.Listener
	policy *atomic.Pointer[proxyPolicy]
}

func (l proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	p := l.policy.Load()
	pol := proxyproto.REJECT
	if ap, ok := addrPort(c.RemoteAddr()); ok && containsAddr(p.allow, ap.Addr()) {
		pol = proxyproto.REQUIRE
	}
	return proxyproto.NewConn(c, proxyproto.WithPolicy(pol), proxyproto.SetReadHeaderTimeout(p.timeout)), nil
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort(), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

func containsAddr(t trustList, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
