package health

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// udpEcho answers every datagram with "pong:" and the datagram.
func udpEcho(t *testing.T) string { return testnet.UDPEcho(t, "pong:") }

// udpSilent reads nothing and answers nothing.
func udpSilent(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func TestUDP(t *testing.T) {
	echo, silent, closed := udpEcho(t), udpSilent(t), closedAddr(t, "udp")
	tests := []struct {
		desc    string
		check   UDP
		addr    string
		timeout time.Duration
		wantErr string
	}{
		{desc: "expected reply passes", check: UDP{Send: []byte("ping"), Expect: "pong:ping"}, addr: echo},
		{desc: "any reply passes without expect", check: UDP{Send: []byte("ping")}, addr: echo},
		{desc: "wrong reply fails", check: UDP{Send: []byte("ping"), Expect: "PONG"}, addr: echo,
			wantErr: `reply does not contain "PONG"`},
		{desc: "refused port fails without expect", check: UDP{Send: []byte("ping")}, addr: closed,
			wantErr: "connection refused"},
		{desc: "refused port fails with expect", check: UDP{Send: []byte("ping"), Expect: "pong"}, addr: closed,
			wantErr: "connection refused"},
		{desc: "silence fails with expect", check: UDP{Send: []byte("ping"), Expect: "pong"}, addr: silent,
			timeout: 100 * time.Millisecond, wantErr: "no reply before the timeout"},
		{desc: "silence passes without expect", check: UDP{Send: []byte("ping")}, addr: silent,
			timeout: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				// Long enough that a refusal or reply, not the deadline,
				// decides these cases.
				timeout = 3 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			checkErr(t, tt.check.Check(ctx, tt.addr), tt.wantErr)
			if tt.timeout == 0 && ctx.Err() != nil {
				t.Fatalf("check ran into its deadline; a reply or refusal should have decided it")
			}
		})
	}
}

func TestUDPCancelFails(t *testing.T) {
	// Cancellation is not the deadline: a silent backend must not pass
	// because the monitor is stopping.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err := UDP{Send: []byte("ping")}.Check(ctx, udpSilent(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("check canceled mid-read = %v, want context.Canceled", err)
	}
}
