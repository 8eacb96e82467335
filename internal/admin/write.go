package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/strata-lb/strata/internal/upstream"
)

// write guards a handler that changes state: it refuses cross-origin
// browser requests, then checks the caller's right to write.
func (s *Server) write(h http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.refuse(w, r, http.StatusForbidden, "cross-origin request refused")
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A write that a proxy forwarded may come from anyone who can
		// reach the proxy: through a strata l7 pool whose registry lists
		// an instance at this listener's address, a client of the data
		// plane would reach the admin API from a loopback peer, with a
		// loopback Host and, behind an operator's proxy, with the
		// operator's token. The API is for operators talking to it
		// directly, so a forwarded write is refused whatever it carries.
		if h := forwardedBy(r); h != "" {
			s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("writes through a proxy are refused (the request carries %s); send them to the admin listener directly", h))
			return
		}
		// An l4 service relays bytes and adds no field; the peer is then
		// this very process's own connection to a backend.
		if s.opts.Relayed != nil {
			if peer, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && s.opts.Relayed(peer) {
				s.refuse(w, r, http.StatusForbidden, "writes relayed by this process's own l4 service are refused; send them to the admin listener directly")
				return
			}
		}
		if s.authorized(w, r) {
			h(w, r)
		}
	}))
}

// authorized answers 401 or 403 itself when the caller may not write.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Token == "" {
		if !s.loopback {
			s.refuse(w, r, http.StatusForbidden, "writes are disabled: the admin listener is not on a loopback address and no token is set")
			return false
		}
		// Without a token, the loopback listener is the only guard. A web
		// page that rebinds its own name to 127.0.0.1 would pass it, but
		// its requests carry its name in Host.
		if !isLoopbackHost(hostOnly(r.Host)) {
			s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("writes without a token need a loopback Host, not %q", r.Host))
			return false
		}
		return true
	}
	return s.bearerOK(w, r)
}

// bearerOK checks the bearer token, answering 401 itself when it is
// missing or wrong.
func (s *Server) bearerOK(w http.ResponseWriter, r *http.Request) bool {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="strata-admin"`)
		s.refuse(w, r, http.StatusUnauthorized, "missing bearer token")
		return false
	}
	// Hashing both sides first makes the comparison take the same time
	// whatever the length of the guess.
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	if subtle.ConstantTimeCompare(got[:], s.token[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="strata-admin", error="invalid_token"`)
		s.refuse(w, r, http.StatusUnauthorized, "invalid bearer token")
		return false
	}
	return true
}

// refuse answers a request that is not allowed and logs it: a stream of
// these is someone probing the control plane.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.log.Warn("admin request refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "status", status, "reason", msg)
	writeError(w, status, msg)
}

// hostOnly strips the port from a Host header.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// setStateHandler serves drain and undrain.
func (s *Server) setStateHandler(action string, st upstream.State) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, b, ok := s.findBackend(w, r)
		if !ok {
			return
		}
		if err := p.SetState(b.Name, st); err != nil {
			// The backend left the pool between lookup and write (a reload).
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		s.log.Info("admin write", "remote", r.RemoteAddr, "action", action, "pool", p.Name(), "backend", b.Name,
			"state_from", b.State.String(), "state_to", st.String())
		s.writeBackend(w, p, b.Name)
	}
}

// updateRequest is the body of PUT /api/v1/pools/{pool}/backends/{backend}.
// Pointers tell a field that is absent from one set to its zero value.
type updateRequest struct {
	Weight *int    `json:"weight"`
	State  *string `json:"state"`
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request) {
	p, b, ok := s.findBackend(w, r)
	if !ok {
		return
	}
	req, status, err := decodeUpdate(w, r)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	var st upstream.State
	if req.State != nil {
		if st, err = upstream.ParseState(*req.State); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if req.Weight != nil && *req.Weight < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("weight must be 0 or more, not %d", *req.Weight))
		return
	}

	// The pool applies one change per snapshot. Taking traffic away first
	// and giving it last means the snapshot in between never sends a
	// backend more than either the old or the new settings would.
	apply := []func() error{}
	if req.State != nil && st != upstream.StateUp {
		apply = append(apply, func() error { return p.SetState(b.Name, st) })
	}
	if req.Weight != nil {
		apply = append(apply, func() error { return p.SetWeight(b.Name, *req.Weight) })
	}
	if req.State != nil && st == upstream.StateUp {
		apply = append(apply, func() error { return p.SetState(b.Name, st) })
	}
	for _, fn := range apply {
		if err := fn(); err != nil {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
	}
	attrs := []any{"remote", r.RemoteAddr, "action", "update", "pool", p.Name(), "backend", b.Name}
	if req.Weight != nil {
		attrs = append(attrs, "weight_from", b.Weight, "weight_to", *req.Weight)
	}
	if req.State != nil {
		attrs = append(attrs, "state_from", b.State.String(), "state_to", st.String())
	}
	s.log.Info("admin write", attrs...)
	s.writeBackend(w, p, b.Name)
}

// decodeUpdate reads and checks the body of an update, returning the
// status to answer with when it is not acceptable.
func decodeUpdate(w http.ResponseWriter, r *http.Request) (updateRequest, int, error) {
	var req updateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		// One object and nothing after it: `{"weight":1}{"weight":9}`
		// is a client bug, not a request for weight 1.
		if _, terr := dec.Token(); terr != io.EOF {
			if errors.As(terr, new(*http.MaxBytesError)) {
				err = terr
			} else {
				return req, http.StatusBadRequest, errors.New("decoding request body: trailing data after the JSON object")
			}
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, http.StatusRequestEntityTooLarge, fmt.Errorf("request body exceeds %d bytes", mbe.Limit)
		}
		if errors.Is(err, io.EOF) {
			return req, http.StatusBadRequest, errors.New(`empty request body: want a JSON object like {"weight": 3} or {"state": "maintenance"}`)
		}
		return req, http.StatusBadRequest, fmt.Errorf("decoding request body: %w", err)
	}
	if req.Weight == nil && req.State == nil {
		return req, http.StatusBadRequest, errors.New(`nothing to change: want "weight", "state" or both`)
	}
	return req, 0, nil
}

// writeBackend answers a write with the backend as the pool now publishes it.
func (s *Server) writeBackend(w http.ResponseWriter, p *upstream.Pool, name string) {
	b := p.Snapshot().Lookup(name)
	if b == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pool %s: no backend %q", p.Name(), name))
		return
	}
	writeJSON(w, http.StatusOK, s.backendStatus(b))
}
