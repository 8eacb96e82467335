package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Nacos gRPC clients in a cluster. A client talks to whichever node it
// connected to, but only the leader proposes to Raft and keeps heartbeats.
// So a node applies its connections' writes through the leader: itself
// when it leads, otherwise an internal HTTP call to the leader
// (PUT /v1/registry/cluster/nacos-grpc), which the write wrapper forwards
// once more if leadership moved meanwhile. Four operations travel that
// way:
//
//   - register and deregister: a client's own writes, sent with the
//     client's token, so the leader checks them exactly as if the client
//     had called it (a follower grants nothing a client lacks);
//   - beat: every heartbeat interval a node beats, on its connections'
//     behalf, for the ephemeral instances they own, carrying each instance
//     whole, so that the leader registers one it does not hold (lost while
//     no leader could take the client's redo, say) — the Nacos 1 rule for
//     heartbeats of unknown instances;
//   - release: a connection ended; the leader removes the instances it
//     still owns.
//
// The leader keeps which connection (by ID, which names its node) last
// registered each instance, so a connection that ends on one node does
// not remove an instance its client has since registered again over a
// connection to another node. A new leader learns the owners from the
// next round of beats; until then a release removes what it names and the
// new owner's next beat brings the instance back.

// nacosOwners is the leader's table of which connection owns an ephemeral
// instance registered over Nacos gRPC.
type nacosOwners struct {
	mu sync.Mutex
	m  map[ownedKey]string
}

// set records conn as the owner of o; unless claim, only when o has none.
func (t *nacosOwners) set(o ownedKey, conn string, claim bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[ownedKey]string{}
	}
	if cur, ok := t.m[o]; claim || !ok || cur == "" {
		t.m[o] = conn
	}
}

// release reports whether conn may remove o (it owns it, or no owner is
// known) and forgets the owner if so.
func (t *nacosOwners) release(o ownedKey, conn string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.m[o]
	if ok && cur != conn {
		return false
	}
	delete(t.m, o)
	return true
}

func (t *nacosOwners) forget(o ownedKey) {
	t.mu.Lock()
	delete(t.m, o)
	t.mu.Unlock()
}

// prune drops the owners of instances the store no longer holds (expired,
// or removed by an operator), so the table stays as large as the
// registry.
func (t *nacosOwners) prune(s *Store) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for o := range t.m {
		if _, ok := s.Instance(o.k, o.id); !ok {
			delete(t.m, o)
		}
	}
}

func (t *nacosOwners) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Operations of grpcWrite.
const (
	grpcOpRegister   = "register"
	grpcOpDeregister = "deregister"
	grpcOpBeat       = "beat"
	grpcOpRelease    = "release"
)

// grpcWrite is what a node applies on the leader for its Nacos gRPC
// connections.
type grpcWrite struct {
	Op    string     `json:"op"`
	Items []grpcItem `json:"items"`
}

// grpcItem is one instance of a grpcWrite and the connection it is for.
type grpcItem struct {
	Conn     string   `json:"conn"`
	Key      Key      `json:"key"`
	Instance Instance `json:"instance"`
}

// maxGRPCBeatItems bounds the instances of one beat request, so that a
// node with many clients sends its beats in pieces of a few hundred KB.
const maxGRPCBeatItems = 2000

// handleNacosGRPC applies a grpcWrite another node sent (the write
// wrapper has made sure this node leads).
func (n *Node) handleNacosGRPC(w http.ResponseWriter, r *http.Request) error {
	var gw grpcWrite
	if err := decode(r, &gw); err != nil {
		return err
	}
	if (gw.Op == grpcOpBeat || gw.Op == grpcOpRelease) && !n.adminOK(r) {
		// A node's own upkeep: only a node (which holds the admin
		// token, or is on loopback without one) may send it.
		return errf(http.StatusUnauthorized, "nacos grpc %s needs the admin token", gw.Op)
	}
	if err := n.applyGRPC(r, &gw); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": n.store.Index()})
	return nil
}

// applyGRPC applies gw on the leader. r carries the client's token (for
// register and deregister, which are checked as the client's own writes).
func (n *Node) applyGRPC(r *http.Request, gw *grpcWrite) error {
	switch gw.Op {
	case grpcOpRegister:
		for i := range gw.Items {
			it := &gw.Items[i]
			if _, err := n.register(r, it.Key, &it.Instance); err != nil {
				return err
			}
			if it.Instance.Ephemeral {
				n.nacosOwners.set(ownedKey{it.Key.withDefaults(), it.Instance.ID()}, it.Conn, true)
			}
		}
	case grpcOpDeregister:
		byKey := map[Key][]string{}
		var keys []Key
		for i := range gw.Items {
			it := &gw.Items[i]
			k := it.Key.withDefaults()
			if !n.writeOK(r, k.Namespace) {
				return n.writeDenied(k.Namespace)
			}
			if err := it.Instance.normalize(); err != nil {
				return errf(http.StatusBadRequest, "%v", err)
			}
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], it.Instance.ID())
			n.nacosOwners.forget(ownedKey{k, it.Instance.ID()})
		}
		for _, k := range keys {
			if _, err := n.deregister(k, byKey[k]); err != nil {
				return err
			}
		}
	case grpcOpBeat:
		for i := range gw.Items {
			it := &gw.Items[i]
			k := it.Key.withDefaults()
			n.nacosOwners.set(ownedKey{k, it.Instance.ID()}, it.Conn, false)
			if _, err := n.beat(k, it.Instance); err != nil {
				return err
			}
		}
		if svcs, insts := n.store.Count(); n.nacosOwners.len() > 2*insts+svcs+1024 {
			n.nacosOwners.prune(n.store)
		}
	case grpcOpRelease:
		byKey := map[Key][]string{}
		var keys []Key
		for i := range gw.Items {
			it := &gw.Items[i]
			k := it.Key.withDefaults()
			id := it.Instance.ID()
			if !n.nacosOwners.release(ownedKey{k, id}, it.Conn) {
				continue // registered again since, over another connection
			}
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], id)
		}
		for _, k := range keys {
			// Not Node.deregister: an ended connection is no explicit
			// deregistration, and its client's redo over another
			// connection must not be held back by a tombstone.
			if _, err := n.Propose(&Command{Op: OpDeregister, Key: k, IDs: byKey[k]}); err != nil {
				return err
			}
		}
	default:
		return errf(http.StatusBadRequest, "nacos grpc: unknown operation %q", gw.Op)
	}
	return nil
}

// apply applies gw through the leader: here when this node leads,
// otherwise over HTTP with token as the bearer. A follower waits (within
// ctx, and at most 5s) for a leader it can reach, so a client that moved
// here because its node died has its registrations taken once the
// cluster has elected a new leader, instead of refused.
func (g *nacosGRPC) apply(ctx context.Context, r *http.Request, gw *grpcWrite, token string) error {
	body, err := json.Marshal(gw)
	if err != nil {
		return err
	}
	return g.viaLeader(ctx, func() error { return g.n.applyGRPC(r, gw) }, func(ctx context.Context, leader string) error {
		return g.send(ctx, leader, http.MethodPut, "/v1/registry/cluster/nacos-grpc", "application/json", bytes.NewReader(body), token)
	})
}

// isHTTPError reports whether err is an answer (an httpError), as
// opposed to a failure to reach the node.
func isHTTPError(err error) bool {
	var he *httpError
	return errors.As(err, &he)
}

// send makes a request of the leader's HTTP API. A transport failure
// comes back as is (the caller may try another leader); an answer other
// than 200 as an httpError of its status.
func (g *nacosGRPC) send(ctx context.Context, leader, method, path, contentType string, body io.Reader, token string) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+leader+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := g.n.fwd.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("leader %s answered %s: %.200s", leader, resp.Status, b)
	}
	return errf(resp.StatusCode, "%s", e.Error)
}

// nodeToken is the token a node sends for its own upkeep (beats,
// releases): the admin token, or none on a loopback-only registry.
func (n *Node) nodeToken() string { return n.auth.Load().admin }
