package health

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		desc    string
		ctx     context.Context
		addr    string
		wantErr bool
	}{
		{desc: "listening port passes", ctx: context.Background(), addr: l.Addr().String()},
		{desc: "closed port fails", ctx: context.Background(), addr: closedAddr(t, "tcp"), wantErr: true},
		{desc: "canceled context fails", ctx: canceled, addr: l.Addr().String(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(tt.ctx, 2*time.Second)
			defer cancel()
			err := TCP{}.Check(ctx, tt.addr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Check(%s) = %v, want error: %v", tt.addr, err, tt.wantErr)
			}
		})
	}
}
