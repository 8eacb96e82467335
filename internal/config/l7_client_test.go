package config

import (
	"strings"
	"testing"
	"time"
)

func TestL7ClientTimeouts(t *testing.T) {
	c, err := Parse("t.yaml", []byte(l7ListenerBase))
	if err != nil {
		t.Fatal(err)
	}
	l := c.L7.Listeners[0]
	if l.ClientHeaderTimeout.D() != 10*time.Second || l.KeepaliveTimeout.D() != 60*time.Second ||
		l.ClientBodyTimeout.D() != 60*time.Second || l.SendTimeout.D() != 60*time.Second {
		t.Errorf("defaults not applied: %+v", l)
	}
	c, err = Parse("t.yaml", []byte(l7ListenerBase+"      client_header_timeout: 2s\n      keepalive_timeout: 5s\n      client_body_timeout: 7s\n      send_timeout: 9s\n"))
	if err != nil {
		t.Fatal(err)
	}
	l = c.L7.Listeners[0]
	if l.ClientHeaderTimeout.D() != 2*time.Second || l.KeepaliveTimeout.D() != 5*time.Second ||
		l.ClientBodyTimeout.D() != 7*time.Second || l.SendTimeout.D() != 9*time.Second {
		t.Errorf("set values not kept: %+v", l)
	}
	for _, tc := range []struct{ desc, extra, want string }{
		{"zero header timeout", "client_header_timeout: 0s", "t.yaml:9: l7.listeners[0].client_header_timeout: must be positive, got 0s"},
		{"negative keepalive", "keepalive_timeout: -1s", "l7.listeners[0].keepalive_timeout: must be positive, got -1s"},
		{"zero body timeout", "client_body_timeout: 0s", "l7.listeners[0].client_body_timeout: must be positive"},
		{"zero send timeout", "send_timeout: 0s", "l7.listeners[0].send_timeout: must be positive"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(l7ListenerBase+"      "+tc.extra+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
