package health

import (
	"context"
	"fmt"
	"net"
)

// TCP passes when a TCP connection to the backend opens. It proves the
// kernel accepts connections on the port, not that the service answers.
type TCP struct{}

var _ Checker = TCP{}

// Check dials addr and closes the connection at once.
func (TCP) Check(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tcp check: %w", err)
	}
	// A failed close says nothing about the backend: the handshake passed.
	_ = c.Close()
	return nil
}
