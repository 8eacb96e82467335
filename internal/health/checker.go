package health

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/strata-lb/strata/internal/config"
)

// Checker probes one backend once. addr is host:port; ctx carries the
// check's timeout. A nil error means the backend passed. Checkers keep no
// state between calls and are safe for concurrent use: retries, rise/fall
// and timing live once, in Monitor.
type Checker interface {
	Check(ctx context.Context, addr string) error
}

// New builds the checker that hc describes. Fields that are zero get the
// defaults documented on config.HealthCheck. When hc.Port is set, the
// returned checker probes that port on the backend's host instead of the
// backend's own port.
func New(hc *config.HealthCheck) (Checker, error) {
	if hc == nil {
		return nil, fmt.Errorf("building health check: no health check configured")
	}
	var c Checker
	switch hc.Type {
	case "tcp":
		c = TCP{}
	case "http", "https":
		expect := config.StatusRanges{{Lo: 200, Hi: 399}}
		if hc.ExpectStatus != "" {
			rs, err := config.ParseStatusRanges(hc.ExpectStatus)
			if err != nil {
				return nil, fmt.Errorf("building %s health check: expect_status: %w", hc.Type, err)
			}
			expect = rs
		}
		c = NewHTTP(HTTPOptions{
			HTTPS:         hc.Type == "https",
			Method:        hc.Method,
			Path:          hc.Path,
			Host:          hc.Host,
			Expect:        expect,
			ExpectBody:    hc.ExpectBody,
			TLSSkipVerify: hc.TLSSkipVerify,
		})
	case "udp":
		c = UDP{Send: []byte(hc.Send), Expect: hc.Expect}
	case "dns":
		d, err := NewDNS(hc.Query, hc.QueryType)
		if err != nil {
			return nil, fmt.Errorf("building dns health check: %w", err)
		}
		c = d
	case "exec":
		if len(hc.Command) == 0 || hc.Command[0] == "" {
			return nil, fmt.Errorf("building exec health check: command is empty")
		}
		c = Exec{Command: hc.Command}
	default:
		return nil, fmt.Errorf("unsupported health check type %q (want tcp, http, https, udp, dns or exec)", hc.Type)
	}
	if hc.Port != 0 {
		if hc.Port < 1 || hc.Port > 65535 {
			return nil, fmt.Errorf("building %s health check: port %d out of range 1-65535", hc.Type, hc.Port)
		}
		c = portOverride{Checker: c, port: strconv.Itoa(hc.Port)}
	}
	return c, nil
}

// portOverride probes another port of the backend's host, for services
// whose health endpoint listens apart from the traffic port.
type portOverride struct {
	Checker
	port string
}

var _ Checker = portOverride{}

func (p portOverride) Check(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("health check of %q: %w", addr, err)
	}
	return p.Checker.Check(ctx, net.JoinHostPort(host, p.port))
}
