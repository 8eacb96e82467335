package l7

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/strata-lb/strata/internal/config"
)

// trustList is a listener's trusted proxies: the clients whose
// X-Forwarded-* headers describe an earlier hop and are kept. Every other
// client could write anything there, so its headers are replaced.
type trustList []netip.Prefix

func parseTrustList(cidrs []string) (trustList, error) {
	t := make(trustList, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := config.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		t = append(t, p)
	}
	return t, nil
}

// contains reports whether the client address ip (as clientIP returns it)
// is trusted. It does not allocate.
func (t trustList) contains(ip string) bool {
	if len(t) == 0 {
		return false
	}
	if i := strings.IndexByte(ip, '%'); i >= 0 {
		ip = ip[:i] // an IPv6 zone says nothing about trust
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Values shared by every request; they are never written to, and their
// capacity of one makes an append by anyone copy them first.
var (
	protoHTTP  = []string{"http"}[:1:1]
	protoHTTPS = []string{"https"}[:1:1]
)

// setForwarded prepares r's X-Forwarded-* headers for the backend. From an
// untrusted client they are replaced: X-Forwarded-For is dropped (the
// writer then sends only the client address), -Proto and -Host describe
// this hop. From a trusted proxy they are kept: the client address is
// appended to X-Forwarded-For and -Proto and -Host are set only when
// missing. hostBuf holds the Host value without an allocation.
func setForwarded(r *http.Request, trusted bool, hostBuf *[1]string) {
	h := r.Header
	proto := protoHTTP
	if r.TLS != nil {
		proto = protoHTTPS
	}
	if !trusted {
		delete(h, "X-Forwarded-For")
		delete(h, "Forwarded") // RFC 7239's form is not kept either
		h["X-Forwarded-Proto"] = proto
		hostBuf[0] = r.Host
		h["X-Forwarded-Host"] = hostBuf[:1:1]
		return
	}
	if len(h["X-Forwarded-Proto"]) == 0 {
		h["X-Forwarded-Proto"] = proto
	}
	if len(h["X-Forwarded-Host"]) == 0 {
		hostBuf[0] = r.Host
		h["X-Forwarded-Host"] = hostBuf[:1:1]
	}
}
