package l7

import (
	"io"
	"net/http"
)

// A balancer in front of l7 nodes (strata's l4, LVS, a cloud load
// balancer) learns that a node is going away only from its health check.
// Closing the listeners at once resets the connections the kernel has
// already queued for it, which that balancer has handed over and cannot
// move. So a stopping node first goes lameduck: it keeps serving, but the
// listener's health_path answers 503, and only after the supervisor's
// shutdown_delay — long enough for the balancer's check to fail — do the
// listeners close. (Envoy's health-check filter fails the same way during
// a drain.)

// Lameduck makes every listener's health_path answer 503 from now on.
// Traffic is served as before.
func (s *Server) Lameduck() { s.lameduck.Store(true) }

func (s *Server) serveHealth(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.lameduck.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "draining\n")
		return
	}
	io.WriteString(w, "ok\n")
}
