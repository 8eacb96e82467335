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
	a := n.auth.Load()
	if a.admin == "" {
		return isLoopback(r)
	}
	return tokenEqual(requestToken(r), a.admin)
}

// authConfig is the node's tokens; a reload swaps it whole.
type authConfig struct {
	admin      string
	namespaces map[string]string
}

// SetTokens replaces the admin token and the namespace tokens; requests
// already in flight finish under the old ones.
func (n *Node) SetTokens(admin string, namespaces map[string]string) {
	n.auth.Store(&authConfig{admin: admin, namespaces: namespaces})
}

// namespaceOK reports whether r may use namespace ns: the namespace needs
// no token, or r carries it (or the admin token).
func (n *Node) namespaceOK(r *http.Request, ns string) bool {
	if ns == "" {
		ns = DefaultNamespace
	}
	a := n.auth.Load()
	want, ok := a.namespaces[ns]
	if !ok || want == "" {
		return true
	}
	t := requestToken(r)
	return tokenEqual(t, want) || (a.admin != "" && tokenEqual(t, a.admin))
}
