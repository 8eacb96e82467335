package health

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/config"
)

func TestNew(t *testing.T) {
	tests := []struct {
		desc    string
		hc      config.HealthCheck
		want    any // the checker type, or nil when New must fail
		wantErr string
	}{
		{desc: "tcp", hc: config.HealthCheck{Type: "tcp"}, want: TCP{}},
		{desc: "http", hc: config.HealthCheck{Type: "http", Path: "/healthz", ExpectStatus: "200-299,404"}, want: &HTTP{}},
		{desc: "https", hc: config.HealthCheck{Type: "https"}, want: &HTTP{}},
		{desc: "udp", hc: config.HealthCheck{Type: "udp", Send: "ping"}, want: UDP{}},
		{desc: "dns", hc: config.HealthCheck{Type: "dns", Query: "example.org", QueryType: "SOA"}, want: DNS{}},
		{desc: "exec", hc: config.HealthCheck{Type: "exec", Command: []string{"/bin/true"}}, want: Exec{}},
		{desc: "port override wraps", hc: config.HealthCheck{Type: "tcp", Port: 9000}, want: portOverride{}},
		{desc: "unknown type", hc: config.HealthCheck{Type: "grpc"}, wantErr: `unsupported health check type "grpc"`},
		{desc: "bad expect_status", hc: config.HealthCheck{Type: "http", ExpectStatus: "2xx"}, wantErr: "expect_status"},
		{desc: "bad query type", hc: config.HealthCheck{Type: "dns", QueryType: "BOGUS"}, wantErr: "unknown query type"},
		{desc: "empty command", hc: config.HealthCheck{Type: "exec"}, wantErr: "command is empty"},
		{desc: "port out of range", hc: config.HealthCheck{Type: "tcp", Port: 70000}, wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c, err := New(&tt.hc)
			if tt.wantErr != "" {
				checkErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := typeName(c), typeName(tt.want); got != want {
				t.Fatalf("New built a %s, want a %s", got, want)
			}
		})
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func TestNewAppliesPortOverride(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	p, _ := net.LookupPort("tcp", port)

	c, err := New(&config.HealthCheck{Type: "tcp", Port: p})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// The backend's own port is closed; the check port listens.
	if err := c.Check(ctx, closedAddr(t, "tcp")); err != nil {
		t.Fatalf("check with port override: %v", err)
	}
	if err := (TCP{}).Check(ctx, closedAddr(t, "tcp")); err == nil {
		t.Fatal("the backend's own port should be closed")
	}
}
