package l7

import (
	"time"

	"github.com/strata-lb/strata/internal/config"
)

// clientTimeouts bound how long a client may hold a connection without
// making progress, stage by stage (the listener's client_header_timeout,
// keepalive_timeout, client_body_timeout and send_timeout):
//
//   - header: from the TLS handshake or a request's first byte to the end
//     of its head, against slowloris;
//   - idle: a keep-alive connection waiting for its next request;
//   - body: the longest silence while a request body is read. The
//     backend's timeout does not cover a read from the client, so without
//     it a client that stops in the middle of its body holds its
//     connection, the handler and a backend connection for good;
//   - send: the longest a response write may make no progress, for the
//     same reason on the way back.
//
// They live in the listener's routing table, so a reload changes them for
// the requests that follow; an HTTP/2 connection keeps the idle timeout
// its listener opened with.
type clientTimeouts struct {
	header, idle, body, send time.Duration
}

// defaultClientTimeouts are config's defaults, for listeners built without
// ApplyDefaults (tests) and servers without a listener.
var defaultClientTimeouts = clientTimeouts{
	header: config.DefaultClientHeaderTimeout.D(),
	idle:   config.DefaultKeepaliveTimeout.D(),
	body:   config.DefaultClientBodyTimeout.D(),
	send:   config.DefaultSendTimeout.D(),
}

func clientTimeoutsOf(ln *config.Listener) clientTimeouts {
	t := defaultClientTimeouts
	for _, f := range []struct {
		to   *time.Duration
		from config.Duration
	}{
		{&t.header, ln.ClientHeaderTimeout}, {&t.idle, ln.KeepaliveTimeout},
		{&t.body, ln.ClientBodyTimeout}, {&t.send, ln.SendTimeout},
	} {
		if f.from > 0 {
			*f.to = f.from.D()
		}
	}
	return t
}

// limits returns the server's current client timeouts.
func (s *h1Server) limits() *clientTimeouts {
	if s.timeouts != nil {
		if t := s.timeouts(); t != nil {
			return t
		}
	}
	return &defaultClientTimeouts
}
