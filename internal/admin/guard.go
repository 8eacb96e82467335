package admin

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// proxyHeaders are the fields a proxy adds to a request it forwards.
// strata's own l7 writes X-Forwarded-For (and -Proto, -Host) on every
// request it sends to a backend, whatever the client sent.
var proxyHeaders = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "Via", "X-Real-Ip"}

// forwardedBy returns the name of the first proxy field r carries, or "".
func forwardedBy(r *http.Request) string {
	for _, h := range proxyHeaders {
		if _, ok := r.Header[h]; ok {
			return h
		}
	}
	return ""
}

// read guards a handler that only reads. On a loopback listener it answers
// only requests whose Host is a loopback name: a web page that rebinds its
// own name to 127.0.0.1 reaches the listener through the operator's
// browser, but its requests carry its own name in Host, and without this
// check its scripts could read the status, the metrics, the connection
// tables and the profiles. A listener on another address is reachable by
// name from the network, so any Host is accepted there (docs/security.md).
func (s *Server) read(h http.Handler) http.Handler {
	if !s.loopback {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopbackHost(hostOnly(r.Host)) {
			s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("the admin listener is on loopback and answers only a loopback Host, not %q", r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// maxProfileSeconds bounds ?seconds= of a CPU profile, a trace and a delta
// profile: each holds a goroutine (and, for CPU profiles, the profiler)
// for that long, and a request for an hour is a way to burn CPU, not a
// diagnosis.
const maxProfileSeconds = 60

// pprofGuard guards the pprof subtree: profiles show the process's
// arguments and memory and cost CPU, so with a token they need it, as
// writes do, and without one they are served only on a loopback listener.
func (s *Server) pprofGuard(w http.ResponseWriter, r *http.Request) {
	if s.opts.Token == "" && !s.loopback {
		s.refuse(w, r, http.StatusForbidden, "pprof is disabled: the admin listener is not on a loopback address and no token is set")
		return
	}
	if s.opts.Token != "" && !s.bearerOK(w, r) {
		return
	}
	if v := r.URL.Query().Get("seconds"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 || n > maxProfileSeconds {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("seconds must be a number from 1 to %d, not %q", maxProfileSeconds, v))
			return
		}
	}
	servePprof(w, r)
}

// secretFlags are the command-line flags whose values the cmdline profile
// hides: a token given on the command line is visible to every local user
// in /proc anyway, but the admin API need not show it to its readers.
var secretFlags = []string{"token", "secret", "password", "passwd", "key"}

// serveCmdline answers /debug/pprof/cmdline like net/http/pprof does, with
// the value of every flag whose name says it is a secret replaced.
func serveCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(redactArgs(os.Args))
}

// redactArgs joins args with NUL bytes, as net/http/pprof does, hiding the
// values of secret flags, both "-token X" and "--token=X". A flag that
// names a file (--token-file) is kept: a path is not the secret.
func redactArgs(args []string) []byte {
	var b bytes.Buffer
	hideNext := false
	for i, a := range args {
		if i > 0 {
			b.WriteByte(0)
		}
		if hideNext {
			b.WriteString("REDACTED")
			hideNext = false
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !isSecretFlag(name) {
			b.WriteString(a)
			continue
		}
		if hasValue {
			b.WriteString(a[:strings.IndexByte(a, '=')+1])
			b.WriteString("REDACTED")
			continue
		}
		b.WriteString(a)
		hideNext = true
	}
	return b.Bytes()
}

func isSecretFlag(name string) bool {
	name = strings.ToLower(name)
	if strings.HasSuffix(name, "file") {
		return false
	}
	for _, f := range secretFlags {
		if strings.Contains(name, f) {
			return true
		}
	}
	return false
}
