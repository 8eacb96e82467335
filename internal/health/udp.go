package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// maxDatagram is the largest UDP reply a check reads.
const maxDatagram = 64 << 10

// aLongTimeAgo is a deadline in the past, which wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// UDP sends one datagram and, when Expect is set, waits for a reply that
// contains it.
//
// Without Expect the check follows keepalived's UDP_CHECK: it passes when
// no ICMP "port unreachable" comes back before the timeout, because many
// UDP services (syslog, statsd) never answer. Such a check always lasts its
// whole timeout when the backend is silent, and it cannot see a host whose
// ICMP is filtered; set Send and Expect when the service can echo.
type UDP struct {
	// Send is the payload (may be empty).
	Send []byte
	// Expect, when set, must occur in the reply.
	Expect string
}

var _ Checker = UDP{}

// Check sends Send to addr on a connected socket, so that the kernel
// reports an ICMP refusal to this socket as ECONNREFUSED.
func (u UDP) Check(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("udp check: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	// Cancellation, unlike the deadline, has no socket equivalent: wake the
	// blocked read by moving its deadline to now.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
	defer stop()

	if _, err := c.Write(u.Send); err != nil {
		return fmt.Errorf("udp check %s: %w", addr, err)
	}
	buf := make([]byte, maxDatagram)
	n, err := c.Read(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() == context.Canceled {
				return fmt.Errorf("udp check %s: %w", addr, ctx.Err())
			}
			if u.Expect == "" {
				return nil // silence without a refusal passes
			}
			return fmt.Errorf("udp check %s: no reply before the timeout", addr)
		}
		return fmt.Errorf("udp check %s: %w", addr, err)
	}
	if u.Expect != "" && !bytes.Contains(buf[:n], []byte(u.Expect)) {
		return fmt.Errorf("udp check %s: reply does not contain %q (got %d bytes)", addr, u.Expect, n)
	}
	return nil
}
