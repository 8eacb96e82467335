package registry

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// requestToken is the token a request carries: a bearer token, or the
// accessToken parameter that Nacos clients send.
func requestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimPrefix(h, "Bearer ")
	}
	return r.URL.Query().Get("accessToken")
}

func tokenEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// isLoopback reports whether the request came from this machine.
func isLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminOK reports whether r may make admin writes: it carries the admin
// token or, when none is configured, comes from loopback.
func (n *Node) adminOK(r *http.Request) bool {
	if n.opts.AdminToken == "" {
		return isLoopback(r)
	}
	return tokenEqual(requestToken(r), n.opts.AdminToken)
}

// namespaceOK reports whether r may use namespace ns: the namespace needs
// no token, or r carries it (or the admin token).
func (n *Node) namespaceOK(r *http.Request, ns string) bool {
	if ns == "" {
		ns = DefaultNamespace
	}
	want, ok := n.opts.NamespaceTokens[ns]
	if !ok || want == "" {
		return true
	}
	t := requestToken(r)
	return tokenEqual(t, want) || (n.opts.AdminToken != "" && tokenEqual(t, n.opts.AdminToken))
}
