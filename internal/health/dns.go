package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNS asks the backend one question over UDP and passes when the answer's
// rcode is NOERROR. NXDOMAIN fails on purpose: a name server that denies
// the very name it is checked with is serving the wrong zone, or none.
// Build it with NewDNS.
type DNS struct {
	name  string
	qtype uint16
}

var _ Checker = DNS{}

// NewDNS builds a DNS checker for name (default ".") and record type
// qtype, a mnemonic such as A, AAAA or SOA (default A).
func NewDNS(name, qtype string) (DNS, error) {
	if name == "" {
		name = "."
	}
	if qtype == "" {
		qtype = "A"
	}
	t, ok := dns.StringToType[strings.ToUpper(qtype)]
	if !ok {
		return DNS{}, fmt.Errorf("unknown query type %q", qtype)
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return DNS{}, fmt.Errorf("bad query name %q", name)
	}
	return DNS{name: dns.Fqdn(name), qtype: t}, nil
}

// Check sends the question to addr and judges the reply's rcode.
func (d DNS) Check(ctx context.Context, addr string) error {
	m := new(dns.Msg)
	m.SetQuestion(d.name, d.qtype)
	// The client's own timeouts default to 2s and would cut a longer check
	// short, so the context's deadline alone bounds the exchange.
	c := &dns.Client{Net: "udp", Timeout: time.Hour}
	if dl, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(dl)
	}
	conn, err := c.DialContext(ctx, addr)
	if err != nil {
		return fmt.Errorf("dns check %s %s: %w", d.name, dns.TypeToString[d.qtype], err)
	}
	defer conn.Close()
	// The client watches the context's deadline but not its cancellation;
	// closing the socket wakes a blocked read when the monitor stops.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		// The socket's deadline is the context's, and either may be seen
		// first: report both the same way.
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = context.DeadlineExceeded
		}
		return fmt.Errorf("dns check %s %s: %w", d.name, dns.TypeToString[d.qtype], err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("dns check %s %s: rcode %s, want NOERROR", d.name, dns.TypeToString[d.qtype], dns.RcodeToString[r.Rcode])
	}
	return nil
}
