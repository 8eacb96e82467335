// Package graceful makes net/http's Shutdown as prompt as it should be.
//
// http.Server.Shutdown closes idle keep-alive connections at once, but one
// that was accepted and has not sent a request yet (StateNew) counts as
// busy until it is 5 s old (golang/go#22682). Clients open such
// connections routinely: Go's Transport parks a dial it raced against a
// connection being freed, and browsers preconnect. Every Shutdown of a
// strata HTTP server (admin, registry) then waited out those 5 s.
package graceful

import (
	"net"
	"net/http"
	"sync"
)

// CloseUnusedOnShutdown makes srv's Shutdown close, once its listeners are
// closed, the connections that have not sent a request, and any accepted
// after. It wraps srv.ConnState, so set that first.
func CloseUnusedOnShutdown(srv *http.Server) {
	t := &tracker{fresh: map[net.Conn]struct{}{}, next: srv.ConnState}
	srv.ConnState = t.connState
	srv.RegisterOnShutdown(t.closeFresh)
}

type tracker struct {
	mu    sync.Mutex
	fresh map[net.Conn]struct{} // nil once Shutdown began
	next  func(net.Conn, http.ConnState)
}

// connState keeps the set of connections that have not sent a request.
func (t *tracker) connState(c net.Conn, st http.ConnState) {
	t.mu.Lock()
	switch {
	case st == http.StateNew && t.fresh == nil: // accepted as the listener closed
		c.Close()
	case st == http.StateNew:
		t.fresh[c] = struct{}{}
	default:
		delete(t.fresh, c)
	}
	t.mu.Unlock()
	if t.next != nil {
		t.next(c, st)
	}
}

// closeFresh runs when Shutdown has closed the listeners.
func (t *tracker) closeFresh() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.fresh {
		c.Close()
	}
	t.fresh = nil
}
