package dnslb

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/dnssyntax"
)

// Negative answers of a zone without an SOA of its own use this one's
// values: a GSLB's names change, so negative caching stays short.
const (
	defaultSOARefresh = 3600
	defaultSOARetry   = 600
	defaultSOAExpire  = 86400
	defaultSOAMinimum = 60
)

// loadRecords reads a zone's records: its master file, if any, then the
// records of the config. Every record must lie inside the zone.
func loadRecords(zc *config.Zone) ([]dns.RR, error) {
	origin := strings.ToLower(dns.Fqdn(zc.Name))
	ttl := uint32(zc.TTL.D().Seconds())
	var rrs []dns.RR
	if zc.File != "" {
		f, err := os.Open(zc.File)
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", origin, err)
		}
		defer f.Close()
		scratch := make([]byte, 65535)
		zp := dns.NewZoneParser(f, origin, zc.File)
		zp.SetDefaultTTL(ttl)
		// $INCLUDE may only name files beside the zone file, so a zone
		// file cannot pull in arbitrary files of the host.
		zp.SetIncludeAllowed(true)
		zp.SetIncludeFS(os.DirFS(filepath.Dir(zc.File)))
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			if !dns.IsSubDomain(origin, strings.ToLower(rr.Header().Name)) {
				return nil, fmt.Errorf("zone %s: %s: %s is outside the zone", origin, zc.File, rr.Header().Name)
			}
			// The parser accepts a type without data, as dynamic update
			// needs; served, it would be a malformed record.
			if _, err := dns.PackRR(rr, scratch, 0, nil, false); err != nil || rr.Header().Rdlength == 0 {
				return nil, fmt.Errorf("zone %s: %s: %s has no valid data", origin, zc.File, rr.Header().Name)
			}
			rrs = append(rrs, rr)
		}
		if err := zp.Err(); err != nil {
			return nil, fmt.Errorf("zone %s: %w", origin, err)
		}
	}
	for i, line := range zc.Records {
		rr, err := dnssyntax.ParseRecord(origin, line, ttl)
		if err != nil {
			return nil, fmt.Errorf("zone %s: records[%d]: %w", origin, i, err)
		}
		rrs = append(rrs, rr)
	}
	return rrs, nil
}

// rrsetKey groups records by owner and type.
type rrsetKey struct {
	owner string // lower-case fqdn
	rtype uint16
}

// zoneData is one zone's records while a table is built.
type zoneData struct {
	zone   *zone
	origin string
	sets   map[rrsetKey][]dns.RR
	owners map[string]bool
	lbs    []lbData
}

func newZoneData(z *zone, rrs []dns.RR, ttl uint32) (*zoneData, error) {
	zd := &zoneData{zone: z, origin: z.name, sets: map[rrsetKey][]dns.RR{}, owners: map[string]bool{}}
	for _, rr := range rrs {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			return nil, fmt.Errorf("zone %s: %s: only class IN is served", z.name, rr)
		}
		owner := strings.ToLower(h.Name)
		k := rrsetKey{owner, h.Rrtype}
		// A set shares one TTL (RFC 2181 §5.2); the lowest wins, as BIND does.
		if prev := zd.sets[k]; len(prev) > 0 && prev[0].Header().Ttl != h.Ttl {
			t := min(prev[0].Header().Ttl, h.Ttl)
			for _, p := range prev {
				p.Header().Ttl = t
			}
			h.Ttl = t
		}
		zd.sets[k] = append(zd.sets[k], rr)
		zd.owners[owner] = true
	}
	soas := zd.sets[rrsetKey{z.name, dns.TypeSOA}]
	for k := range zd.sets {
		if k.rtype == dns.TypeSOA && k.owner != z.name {
			return nil, fmt.Errorf("zone %s: SOA at %s: an SOA belongs at the apex", z.name, k.owner)
		}
		if k.rtype == dns.TypeCNAME {
			if len(zd.sets[k]) > 1 {
				return nil, fmt.Errorf("zone %s: %s has more than one CNAME", z.name, k.owner)
			}
			if k.owner == z.name {
				return nil, fmt.Errorf("zone %s: the apex cannot be a CNAME", z.name)
			}
			for k2 := range zd.sets {
				if k2.owner == k.owner && k2.rtype != dns.TypeCNAME {
					return nil, fmt.Errorf("zone %s: %s has a CNAME and other records", z.name, k.owner)
				}
			}
		}
	}
	switch len(soas) {
	case 0:
		soa := &dns.SOA{
			Hdr:     dns.RR_Header{Name: z.name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
			Ns:      "ns." + z.name,
			Mbox:    "hostmaster." + z.name,
			Serial:  1,
			Refresh: defaultSOARefresh, Retry: defaultSOARetry, Expire: defaultSOAExpire,
			Minttl: defaultSOAMinimum,
		}
		zd.sets[rrsetKey{z.name, dns.TypeSOA}] = []dns.RR{soa}
		soas = zd.sets[rrsetKey{z.name, dns.TypeSOA}]
	case 1:
	default:
		return nil, fmt.Errorf("zone %s: more than one SOA", z.name)
	}
	zd.owners[z.name] = true
	// The SOA of negative answers carries the negative TTL (RFC 2308 §3).
	soa := dns.Copy(soas[0]).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	b, err := packRR(soa, false)
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", z.name, err)
	}
	z.soa = b
	return zd, nil
}
