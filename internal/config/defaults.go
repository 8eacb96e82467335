package config

import (
	"fmt"
	"net"
	"time"
)

// Defaults, named so docs/config.md and the code can be checked against
// each other by a reader.
const (
	DefaultAdminListen     = "127.0.0.1:9901"
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "text"
	DefaultShutdownTimeout = Duration(30 * time.Second)
	DefaultLB              = "wrr"
	DefaultWeight          = 1
	DefaultState           = "up"
	DefaultInterval        = Duration(5 * time.Second)
	DefaultTimeout         = Duration(2 * time.Second)
	DefaultRise            = 2
	DefaultFall            = 3
	DefaultPath            = "/"
	DefaultMethod          = "GET"
	DefaultExpectStatus    = "200-399"
	DefaultQuery           = "."
	DefaultQueryType       = "A"
	DefaultMaxFails        = 5
	DefaultBaseEjection    = Duration(30 * time.Second)
	DefaultMaxEjection     = Duration(5 * time.Minute)
	DefaultPathPrefix      = "/"
)

// ApplyDefaults is stage two: it fills in every field the file left out.
//
// Numbers and durations whose zero is a legal or a tellable-wrong value take
// their default only when absent from the file, so "rise: 0" is kept and
// rejected by Validate instead of silently becoming 2, and
// "shutdown_timeout: 0s" means "do not wait". For a Config built in code
// (no positions) a zero number is taken as absent. Empty strings are always
// taken as absent. ApplyDefaults is idempotent.
func (c *Config) ApplyDefaults() {
	// absent reports whether the numeric field at path should take its
	// default.
	absent := func(isZero bool, path string) bool { return isZero && !c.pos.Has(path) }

	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if c.Admin.Pprof == nil {
		// Profiles show the process's arguments and a CPU profile costs
		// CPU for as long as asked, so they are on by default only where
		// no one but the machine's own users can ask.
		host, _, err := net.SplitHostPort(c.Admin.Listen)
		c.Admin.Pprof = ptr(err == nil && isLoopback(host))
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if absent(c.ShutdownTimeout == 0, "shutdown_timeout") {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}

	for i := range c.Pools {
		p := &c.Pools[i]
		pp := fmt.Sprintf("pools[%d]", i)
		if p.LB == "" {
			p.LB = DefaultLB
		}
		for j := range p.Backends {
			b := &p.Backends[j]
			if b.Weight == nil {
				b.Weight = ptr(DefaultWeight)
			}
			if b.State == "" {
				b.State = DefaultState
			}
			if b.Name == "" {
				b.Name = b.Address
			}
		}
		if h := p.Health; h != nil {
			hp := pp + ".health"
			if absent(h.Interval == 0, hp+".interval") {
				h.Interval = DefaultInterval
			}
			if absent(h.Timeout == 0, hp+".timeout") {
				h.Timeout = DefaultTimeout
			}
			if h.Jitter == nil {
				h.Jitter = ptr(h.Interval / 10)
			}
			if absent(h.Rise == 0, hp+".rise") {
				h.Rise = DefaultRise
			}
			if absent(h.Fall == 0, hp+".fall") {
				h.Fall = DefaultFall
			}
			// Protocol-specific fields are filled only for their protocol,
			// so a tcp check does not show an HTTP path it never uses.
			switch h.Type {
			case "http", "https":
				if h.Path == "" {
					h.Path = DefaultPath
				}
				if h.Method == "" {
					h.Method = DefaultMethod
				}
				if h.ExpectStatus == "" {
					h.ExpectStatus = DefaultExpectStatus
				}
			case "dns":
				if h.Query == "" {
					h.Query = DefaultQuery
				}
				if h.QueryType == "" {
					h.QueryType = DefaultQueryType
				}
			}
		}
		// Passive ejection is on unless turned off, so the section exists
		// after defaults even when the file has none.
		if p.Passive == nil {
			p.Passive = &Passive{}
		}
		pa, pap := p.Passive, pp+".passive"
		if pa.MaxFails == nil {
			pa.MaxFails = ptr(DefaultMaxFails)
		}
		if absent(pa.BaseEjection == 0, pap+".base_ejection") {
			pa.BaseEjection = DefaultBaseEjection
		}
		if absent(pa.MaxEjection == 0, pap+".max_ejection") {
			pa.MaxEjection = DefaultMaxEjection
		}
	}

	if c.L7 != nil {
		for i := range c.L7.Listeners {
			l := &c.L7.Listeners[i]
			if l.Name == "" {
				l.Name = l.Listen
			}
			for j := range l.Routes {
				if l.Routes[j].PathPrefix == "" {
					l.Routes[j].PathPrefix = DefaultPathPrefix
				}
			}
		}
	}
	for _, f := range sectionDefaults {
		f(c, absent)
	}
}

func ptr[T any](v T) *T { return &v }
