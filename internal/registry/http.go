package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds request bodies; a registration is a few hundred bytes.
const maxBody = 1 << 20

// forwardedHeader marks a request a follower forwarded, so a node that
// lost leadership meanwhile answers an error instead of forwarding again.
const forwardedHeader = "X-Strata-Forwarded"

func (n *Node) routes() http.Handler {
	m := http.NewServeMux()
	// strata's own API.
	m.HandleFunc("PUT /v1/registry/instances", n.write(n.handleRegister))
	m.HandleFunc("DELETE /v1/registry/instances", n.write(n.handleDeregister))
	m.HandleFunc("PATCH /v1/registry/instances", n.write(n.handlePatch))
	m.HandleFunc("PUT /v1/registry/beat", n.write(n.handleBeat))
	m.HandleFunc("PUT /v1/registry/services", n.write(n.handlePutService))
	m.HandleFunc("DELETE /v1/registry/services/{ns}/{group}/{service}", n.write(n.handleDeleteService))
	m.HandleFunc("GET /v1/registry/services", n.handleListServices)
	m.HandleFunc("GET /v1/registry/services/{ns}/{group}/{service}", n.handleQuery)
	m.HandleFunc("GET /v1/registry/watch/{ns}/{group}/{service}", n.handleWatch)
	m.HandleFunc("GET /v1/registry/watch/{ns}", n.handleWatchNamespace)
	m.HandleFunc("GET /v1/registry/cluster", n.handleCluster)
	m.HandleFunc("POST /v1/registry/cluster/join", n.write(n.handleJoin))
	m.HandleFunc("POST /v1/registry/cluster/remove", n.write(n.handleRemovePeer))
	m.HandleFunc("PUT /v1/registry/cluster/nacos-grpc", n.write(n.handleNacosGRPC))
	// Nacos Open API v1, naming.
	n.nacosRoutes(m)
	// The config service: Nacos Open API v1 config and strata's own.
	n.configRoutes(m)
	return m
}

// httpError is an error with a status code.
type httpError struct {
	code int
	msg  string
	// wrapped, when set, is a sentinel that errors.Is matches (the
	// config service's conflict and not-found).
	wrapped error
}

func (e *httpError) Error() string { return e.msg }

func (e *httpError) Unwrap() error { return e.wrapped }

func errf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	var he *httpError
	var le *LimitError
	if errors.As(err, &he) {
		code = he.code
	} else if errors.As(err, &le) {
		code = http.StatusForbidden
	} else if errors.Is(err, ErrNoLeader) {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// write wraps a write handler: on a follower it forwards the request to
// the leader unchanged (the leader alone proposes to Raft and keeps
// heartbeats); on the leader it runs h.
func (n *Node) write(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if !n.IsLeader() {
			if r.Header.Get(forwardedHeader) != "" {
				writeErr(w, errf(http.StatusServiceUnavailable, "registry: this node no longer leads; retry"))
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			leader, err := n.waitLeader(ctx)
			cancel()
			if err != nil {
				writeErr(w, err)
				return
			}
			if leader != n.id {
				n.forward(w, r, leader)
				return
			}
		}
		if err := h(w, r); err != nil {
			n.countRefused(err)
			writeErr(w, err)
		}
	}
}

func (n *Node) forward(w http.ResponseWriter, r *http.Request, leader string) {
	target := &url.URL{Scheme: "http", Host: leader}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = leader
			pr.Out.Header.Set(forwardedHeader, n.id)
			// Keep the caller's address for gray routing and audit.
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeErr(w, errf(http.StatusBadGateway, "registry: forwarding to leader %s: %v", leader, err))
		},
	}
	p.ServeHTTP(w, r)
}

// instanceBody is the JSON of instance writes in strata's API.
type instanceBody struct {
	Key
	Instance
	// Optional fields of a patch.
	PatchWeight  *float64          `json:"set_weight,omitempty"`
	PatchEnabled *bool             `json:"set_enabled,omitempty"`
	PatchMeta    map[string]string `json:"set_metadata,omitempty"`
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errf(http.StatusBadRequest, "decoding request body: %v", err)
	}
	return nil
}

func (n *Node) handleRegister(w http.ResponseWriter, r *http.Request) error {
	var b instanceBody
	b.Enabled, b.Healthy, b.Ephemeral, b.Weight = true, true, true, 1
	if err := decode(r, &b); err != nil {
		return err
	}
	idx, err := n.register(r, b.Key, &b.Instance)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": idx, "id": b.Instance.ID(), "heartbeat_interval_ms": n.live.opts.Interval.Milliseconds()})
	return nil
}

// register is a client's registration, through strata's API or Nacos's:
// the namespace's write rule, then the re-registration rule, then Raft.
// in is normalised in place.
func (n *Node) register(r *http.Request, k Key, in *Instance) (uint64, error) {
	k = k.withDefaults()
	if !n.writeOK(r, k.Namespace) {
		return 0, n.writeDenied(k.Namespace)
	}
	if err := in.normalize(); err != nil {
		return 0, errf(http.StatusBadRequest, "%v", err)
	}
	if err := n.reregisterOK(r, k, in); err != nil {
		return 0, err
	}
	c := &Command{Op: OpRegister, Key: k, Instances: []Instance{*in}}
	n.gone.clear(k, in.ID())
	idx, err := n.Propose(c)
	if err != nil {
		return 0, err
	}
	if in.Ephemeral {
		n.live.Beat(c.Key, in.ID())
	}
	return idx, nil
}

// deregister is a client's explicit deregistration of ids from k (not an
// expiry): it is marked, so that a late heartbeat does not undo it.
func (n *Node) deregister(k Key, ids []string) (uint64, error) {
	n.gone.mark(k, ids, time.Now())
	return n.Propose(&Command{Op: OpDeregister, Key: k, IDs: ids})
}

// instanceFromQuery reads the instance's identity from query parameters.
func instanceFromQuery(q url.Values) (Key, string, error) {
	k := Key{Namespace: q.Get("namespace"), Group: q.Get("group"), Service: q.Get("service")}
	port, err := strconv.Atoi(q.Get("port"))
	if err != nil {
		return k, "", errf(http.StatusBadRequest, "port %q is not a number", q.Get("port"))
	}
	in := Instance{IP: q.Get("ip"), Port: port, Cluster: q.Get("cluster")}
	if err := in.normalize(); err != nil {
		return k, "", errf(http.StatusBadRequest, "%v", err)
	}
	return k, in.ID(), nil
}

func (n *Node) handleDeregister(w http.ResponseWriter, r *http.Request) error {
	k, id, err := instanceFromQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if !n.writeOK(r, k.Namespace) {
		return n.writeDenied(k.Namespace)
	}
	idx, err := n.deregister(k, []string{id})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": idx})
	return nil
}

func (n *Node) handlePatch(w http.ResponseWriter, r *http.Request) error {
	if !n.adminOK(r) {
		return errf(http.StatusUnauthorized, "changing an instance needs the admin token")
	}
	var b instanceBody
	if err := decode(r, &b); err != nil {
		return err
	}
	if err := b.Instance.normalize(); err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	idx, err := n.Propose(&Command{Op: OpPatch, Key: b.Key, IDs: []string{b.Instance.ID()}, Patch: &Patch{Weight: b.PatchWeight, Enabled: b.PatchEnabled, Metadata: b.PatchMeta}})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": idx})
	return nil
}

// beat records a heartbeat on the leader. An unknown instance is
// registered again from the beat (it was removed while the caller was
// away); an unhealthy one is made healthy. Only these transitions reach
// Raft.
func (n *Node) beat(k Key, in Instance) (uint64, error) {
	if err := in.normalize(); err != nil {
		return 0, errf(http.StatusBadRequest, "%v", err)
	}
	k = k.withDefaults()
	if err := k.Validate(); err != nil {
		return 0, errf(http.StatusBadRequest, "%v", err)
	}
	id := in.ID()
	cur, ok := n.store.Instance(k, id)
	if !ok && n.gone.recent(k, id, time.Now()) {
		// A heartbeat sent before its client deregistered: see tombstone.go.
		return n.store.Index(), nil
	}
	n.live.Beat(k, id)
	switch {
	case !ok:
		in.Healthy, in.Ephemeral = true, true
		return n.Propose(&Command{Op: OpRegister, Key: k, Instances: []Instance{in}})
	case !cur.Healthy && cur.Ephemeral:
		return n.Propose(&Command{Op: OpSetHealth, Key: k, IDs: []string{id}, Healthy: true})
	}
	return n.store.Index(), nil
}

func (n *Node) handleBeat(w http.ResponseWriter, r *http.Request) error {
	var b instanceBody
	b.Enabled, b.Weight = true, 1
	if err := decode(r, &b); err != nil {
		return err
	}
	if !n.writeOK(r, b.Namespace) {
		return n.writeDenied(b.Namespace)
	}
	if _, err := n.beat(b.Key, b.Instance); err != nil {
		return err
	}
	// Every ephemeral instance beats every few seconds, so the answer,
	// the same for all, is encoded once (see Liveness.beatAnswer).
	w.Header()["Content-Type"] = jsonContentType
	w.Write(n.live.beatAnswer)
	return nil
}

// jsonContentType is the Content-Type header's value of precomputed
// answers; net/http only reads it.
var jsonContentType = []string{"application/json"}

func (n *Node) handlePutService(w http.ResponseWriter, r *http.Request) error {
	if !n.adminOK(r) {
		return errf(http.StatusUnauthorized, "changing a service needs the admin token")
	}
	var s Service
	if err := decode(r, &s); err != nil {
		return err
	}
	idx, err := n.Propose(&Command{Op: OpPutService, Service: &s})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": idx})
	return nil
}

func pathKey(r *http.Request) Key {
	return Key{Namespace: r.PathValue("ns"), Group: r.PathValue("group"), Service: r.PathValue("service")}
}

func (n *Node) handleDeleteService(w http.ResponseWriter, r *http.Request) error {
	if !n.adminOK(r) {
		return errf(http.StatusUnauthorized, "deleting a service needs the admin token")
	}
	idx, err := n.Propose(&Command{Op: OpDeleteService, Key: pathKey(r)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": idx})
	return nil
}

func (n *Node) handleListServices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !n.namespaceOK(r, q.Get("namespace")) {
		writeErr(w, errf(http.StatusForbidden, "namespace needs an access token"))
		return
	}
	ks := n.store.Services(q.Get("namespace"), q.Get("group"))
	if ks == nil {
		ks = []Key{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": n.store.Index(), "services": ks})
}

// parseQuery reads a Query from the URL of a query or watch request.
func parseQuery(r *http.Request) (Query, error) {
	v := r.URL.Query()
	q := Query{Key: pathKey(r), HealthyOnly: v.Get("healthy") != "false", Zone: v.Get("zone"), Caller: v.Get("caller")}
	if q.Caller == "" {
		q.Caller = clientIP(r)
	}
	if c := v.Get("clusters"); c != "" {
		q.Clusters = strings.Split(c, ",")
	}
	var err error
	if q.Selector, err = pairs(v["selector"]); err != nil {
		return q, err
	}
	if q.CallerTags, err = pairs(v["tag"]); err != nil {
		return q, err
	}
	return q, nil
}

// pairs parses k=v items, each possibly a comma-separated list.
func pairs(items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, it := range items {
		for _, p := range strings.Split(it, ",") {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return nil, errf(http.StatusBadRequest, "selector %q is not key=value", p)
			}
			m[k] = v
		}
	}
	return m, nil
}

func clientIP(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-For"); f != "" && isLoopback(r) {
		ip, _, _ := strings.Cut(f, ",")
		return strings.TrimSpace(ip)
	}
	host, _, _ := strings.Cut(r.RemoteAddr, ":")
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
		host = strings.Trim(r.RemoteAddr[:i], "[]")
	}
	return host
}

// handleQuery answers the healthy instances of a service. With ?index=N it
// is a blocking query: it waits (up to ?wait=, default 30s, capped at
// MaxWait) until the service's index passes N.
func (n *Node) handleQuery(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if !n.namespaceOK(r, q.Namespace) {
		writeErr(w, errf(http.StatusForbidden, "namespace %q needs an access token", q.Namespace))
		return
	}
	var v View
	var found bool
	if r.URL.Query().Has("consistent") {
		if !n.consistentRead(w, r) {
			return
		}
	}
	if s := r.URL.Query().Get("index"); s != "" {
		idx, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeErr(w, errf(http.StatusBadRequest, "index %q is not a number", s))
			return
		}
		wait := 30 * time.Second
		if s := r.URL.Query().Get("wait"); s != "" {
			if wait, err = time.ParseDuration(s); err != nil || wait < 0 {
				writeErr(w, errf(http.StatusBadRequest, "wait %q is not a duration", s))
				return
			}
		}
		wait = min(wait, n.opts.MaxWait)
		unpark, ok := n.park(w, r)
		if !ok {
			return
		}
		defer unpark()
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		release := context.AfterFunc(n.ctx, cancel)
		v, found = n.store.Wait(ctx, q.Key, idx)
		release()
		cancel()
		w.Header().Set("X-Strata-Index", strconv.FormatUint(v.Index, 10))
		w.Header().Set("Content-Type", "application/json")
		n.writeParked(w, n.answers.answer(cacheKey(r, &v, q.Caller), &v, found, &q))
		return
	}
	v, found = n.store.Get(q.Key)
	body := n.answers.answer(cacheKey(r, &v, q.Caller), &v, found, &q)
	w.Header().Set("X-Strata-Index", strconv.FormatUint(v.Index, 10))
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// consistentRead readies a ?consistent query, Consul's mode of that name:
// the answer must reflect every write acknowledged before the query began.
// A follower forwards the query to the leader. The leader first confirms
// with a quorum that it still leads (a leader cut off from the others may
// not know yet that it was deposed, and its store may lack writes the new
// leader acknowledged), and it must have applied every entry of earlier
// terms (its barrier, which leaderLoop takes when it comes to lead). It
// reports whether the caller should go on and answer from the store; when
// false it has answered already.
func (n *Node) consistentRead(w http.ResponseWriter, r *http.Request) bool {
	if !n.IsLeader() {
		if r.Header.Get(forwardedHeader) != "" {
			writeErr(w, errf(http.StatusServiceUnavailable, "registry: this node no longer leads; retry"))
			return false
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		leader, err := n.waitLeader(ctx)
		cancel()
		if err != nil {
			writeErr(w, err)
			return false
		}
		if leader != n.id {
			n.forward(w, r, leader)
			return false
		}
	}
	// Every write this leader acknowledged in its term was applied to its
	// store before the acknowledgement, and every write acknowledged in
	// earlier terms was applied before its barrier in this term. So once
	// a quorum confirms it still leads, its store answers consistently.
	if n.barrierTerm.Load() != n.raft.CurrentTerm() {
		writeErr(w, errf(http.StatusServiceUnavailable, "registry: the leader has not applied its predecessors' entries yet; retry"))
		return false
	}
	n.verifying.RLock()
	defer n.verifying.RUnlock()
	select {
	case <-n.stop:
		writeErr(w, errf(http.StatusServiceUnavailable, "registry: this node is stopping; retry"))
		return false
	default:
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		writeErr(w, errf(http.StatusServiceUnavailable, "registry: this node could not confirm it leads: %v; retry", err))
		return false
	}
	return true
}

// handleWatch streams one JSON Result per line: the current answer, then
// one after every change of the service, until the client goes away.
func (n *Node) handleWatch(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	ctx, done, ok := n.startStream(w, r, q.Namespace)
	if !ok {
		return
	}
	defer done()
	v, found := n.store.Get(q.Key)
	for {
		if n.writeParked(w, n.answers.answer(cacheKey(r, &v, q.Caller), &v, found, &q)) != nil {
			return
		}
		v, found = n.store.Wait(ctx, q.Key, v.Index)
		if ctx.Err() != nil {
			return
		}
	}
}

func (n *Node) handleCluster(w http.ResponseWriter, r *http.Request) {
	type member struct {
		ID       string `json:"id"`
		RaftAddr string `json:"raft_addr"`
		Suffrage string `json:"suffrage"`
	}
	var ms []member
	for _, s := range n.Members() {
		ms = append(ms, member{string(s.ID), string(s.Address), s.Suffrage.String()})
	}
	svcs, insts := n.store.Count()
	writeJSON(w, http.StatusOK, map[string]any{
		"id": n.id, "leader": n.Leader(), "state": n.raft.State().String(), "members": ms,
		"index": n.store.Index(), "services": svcs, "instances": insts,
	})
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) error {
	if !n.adminOK(r) {
		return errf(http.StatusUnauthorized, "joining needs the admin token")
	}
	var j joinRequest
	if err := decode(r, &j); err != nil {
		return err
	}
	if err := n.join(j); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	return nil
}

func (n *Node) handleRemovePeer(w http.ResponseWriter, r *http.Request) error {
	if !n.adminOK(r) {
		return errf(http.StatusUnauthorized, "removing a peer needs the admin token")
	}
	var p struct {
		ID string `json:"id"`
	}
	if err := decode(r, &p); err != nil {
		return err
	}
	if err := n.removePeer(p.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": p.ID, "members": len(n.Members())})
	return nil
}

var _ = io.EOF
