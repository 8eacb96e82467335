package registry

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
)

// The registry's auth model (docs/registry.md has it as a table):
//
//   - Without an admin token the registry listens on loopback only (Start
//     and the config refuse anything else), so every client is local:
//     writes are open, except in namespaces that have their own token.
//   - With an admin token every write needs a token: a namespace's own
//     token for that namespace, or the admin token for any. A namespace
//     without a token of its own (public, by default) is written with the
//     admin token only, so an anonymous client that reaches the port can
//     register nothing.
//   - Admin writes (services, weights and switches, joins, peer removal)
//     need the admin token, as does changing an instance's weight or
//     enabled switch through a re-registration.
//   - Reads of a namespace with a token need it (or the admin token);
//     other namespaces are readable by anyone who reaches the port.

// requestToken is the token a request carries: a bearer token, or the
// accessToken parameter that Nacos clients send (in the query, or in the
// form body of a POST or PUT once a Nacos handler has parsed it; strata's
// own JSON handlers never parse the body as a form).
func requestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimPrefix(h, "Bearer ")
	}
	if r.Form != nil {
		return r.Form.Get("accessToken")
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

// namespaceOK reports whether r may read namespace ns: the namespace needs
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

// writeOK reports whether r may register, beat or deregister in namespace
// ns: it carries the namespace's token or the admin token, or the
// registry has no admin token (it is then on loopback) and the namespace
// none of its own.
func (n *Node) writeOK(r *http.Request, ns string) bool {
	if ns == "" {
		ns = DefaultNamespace
	}
	a := n.auth.Load()
	t := requestToken(r)
	if want := a.namespaces[ns]; want != "" && tokenEqual(t, want) {
		return true
	}
	if a.admin != "" {
		return tokenEqual(t, a.admin)
	}
	return a.namespaces[ns] == ""
}

// writeDenied is the answer to a write that writeOK refused.
func (n *Node) writeDenied(ns string) error {
	if ns == "" {
		ns = DefaultNamespace
	}
	if n.auth.Load().namespaces[ns] != "" {
		return errf(http.StatusForbidden, "writing in namespace %q needs its access token or the admin token", ns)
	}
	return errf(http.StatusForbidden, "writing in namespace %q needs the admin token (the namespace has no token of its own)", ns)
}

// reregisterOK refuses a registration of an instance that exists already
// when it would change its weight or enabled switch and r does not carry
// the admin token: those are the operator's (a PATCH), and a client
// re-registering must not undo a drain.
func (n *Node) reregisterOK(r *http.Request, k Key, in *Instance) error {
	cur, ok := n.store.Instance(k, in.ID())
	if !ok || (cur.Weight == in.Weight && cur.Enabled == in.Enabled) || n.adminOK(r) {
		return nil
	}
	return errf(http.StatusForbidden, "instance %s of %s is registered with weight %v and enabled %v; changing them needs the admin token (PATCH the instance)", in.ID(), k, cur.Weight, cur.Enabled)
}

// countRefused counts a write refused for its token or by a limit, so an
// operator sees clients that lack a token, or a namespace at its bound,
// on /metrics (strata_registry_writes_refused_total).
func (n *Node) countRefused(err error) {
	var le *LimitError
	var he *httpError
	switch {
	case errors.As(err, &le):
		n.stats.refusedLimit.Add(1)
	case errors.As(err, &he) && (he.code == http.StatusUnauthorized || he.code == http.StatusForbidden):
		n.stats.refusedToken.Add(1)
	}
}
