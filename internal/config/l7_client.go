package config

import (
	"fmt"
	"time"
)

// The l7 listener's client timeouts. They bound how long a client may hold
// a connection without making progress, each at a different stage, and
// carry nginx's names and defaults where nginx has them:
//
//   - ClientHeaderTimeout: from the first byte of a request (or the TLS
//     handshake) to the end of its head; the slowloris bound. nginx's
//     default is 60s; strata's 10s, as most load balancers choose (a
//     head is one packet for every client that is not an attack).
//   - KeepaliveTimeout: how long a connection may wait idle for its next
//     request (nginx 75s; strata keeps the 60s it always had).
//   - ClientBodyTimeout: the longest silence while a request body is read
//     (nginx 60s).
//   - SendTimeout: the longest a response write may make no progress
//     (nginx 60s).

// Defaults of the listener's client timeouts.
const (
	DefaultClientHeaderTimeout = Duration(10 * time.Second)
	DefaultKeepaliveTimeout    = Duration(60 * time.Second)
	DefaultClientBodyTimeout   = Duration(60 * time.Second)
	DefaultSendTimeout         = Duration(60 * time.Second)
)

// clientTimeouts lists a listener's client timeouts with their YAML names
// and defaults, for the two stages below.
func (l *Listener) clientTimeouts() []struct {
	name string
	d    *Duration
	def  Duration
} {
	return []struct {
		name string
		d    *Duration
		def  Duration
	}{
		{"client_header_timeout", &l.ClientHeaderTimeout, DefaultClientHeaderTimeout},
		{"keepalive_timeout", &l.KeepaliveTimeout, DefaultKeepaliveTimeout},
		{"client_body_timeout", &l.ClientBodyTimeout, DefaultClientBodyTimeout},
		{"send_timeout", &l.SendTimeout, DefaultSendTimeout},
	}
}

func init() {
	onDefaults(func(c *Config, absent func(bool, string) bool) {
		if c.L7 == nil {
			return
		}
		for i := range c.L7.Listeners {
			lp := fmt.Sprintf("l7.listeners[%d].", i)
			for _, f := range c.L7.Listeners[i].clientTimeouts() {
				if absent(*f.d == 0, lp+f.name) {
					*f.d = f.def
				}
			}
		}
	})
	onValidate(func(v *validator, _ map[string]bool) {
		if v.c.L7 == nil {
			return
		}
		for i := range v.c.L7.Listeners {
			lp := fmt.Sprintf("l7.listeners[%d].", i)
			for _, f := range v.c.L7.Listeners[i].clientTimeouts() {
				if *f.d <= 0 {
					v.errorf(lp+f.name, "must be positive, got %s", f.d.D())
				}
			}
		}
	})
}
