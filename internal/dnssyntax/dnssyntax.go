// Package dnssyntax is what a DNS name, type and record are, for the
// config: it checks them with miekg/dns and registers itself with
// internal/config/known, so that internal/config validates the dns
// section without importing a DNS library, and the dns role parses the
// records of its zones with the same function the config checks them with.
package dnssyntax

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config/known"
)

func init() { known.SetDNS(syntax{}) }

// syntax implements known.DNS.
type syntax struct{}

var _ known.DNS = syntax{}

func (syntax) Fqdn(name string) string { return dns.Fqdn(name) }

func (syntax) IsDomainName(name string) bool {
	_, ok := dns.IsDomainName(name)
	return ok
}

func (syntax) IsSubDomain(parent, child string) bool { return dns.IsSubDomain(parent, child) }

func (syntax) IsType(name string) bool {
	_, ok := dns.StringToType[name]
	return ok
}

func (syntax) CheckRecord(zone, line string) error { return CheckRecord(zone, line) }

// CheckRecord parses one master-file line relative to zone (a fully
// qualified, lower-case name) and checks that it lies inside the zone.
func CheckRecord(zone, line string) error {
	_, err := ParseRecord(zone, line, 3600)
	return err
}

// ParseRecord parses one master-file line relative to zone with ttl as the
// default TTL in seconds, and checks that the record lies inside the zone.
func ParseRecord(zone, line string, ttl uint32) (dns.RR, error) {
	if strings.ContainsAny(line, "\n\r") {
		return nil, fmt.Errorf("a record is one line")
	}
	if strings.HasPrefix(strings.TrimSpace(line), "$") {
		return nil, fmt.Errorf("directives ($ORIGIN, $INCLUDE …) are not allowed in records")
	}
	zp := dns.NewZoneParser(strings.NewReader(line+"\n"), zone, "")
	zp.SetDefaultTTL(ttl)
	zp.SetIncludeAllowed(false)
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("parsing record %q: %v", line, err)
	}
	if !ok || rr == nil {
		return nil, fmt.Errorf("%q holds no record", line)
	}
	if _, more := zp.Next(); more {
		return nil, fmt.Errorf("%q holds more than one record", line)
	}
	// The parser accepts a type without data ("www A"), as dynamic
	// update needs; served, it would be an empty, malformed record.
	buf := make([]byte, 65535)
	if _, err := dns.PackRR(rr, buf, 0, nil, false); err != nil {
		return nil, fmt.Errorf("record %q: %v", line, err)
	}
	if rr.Header().Rdlength == 0 {
		return nil, fmt.Errorf("record %q has no data", line)
	}
	if !dns.IsSubDomain(zone, strings.ToLower(rr.Header().Name)) {
		return nil, fmt.Errorf("%s is outside the zone %s", rr.Header().Name, zone)
	}
	return rr, nil
}
