package dnslb

import (
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// maxChase bounds how many CNAMEs inside our zones an answer follows.
const maxChase = 8

// buildTable turns the dns section into a table. It reads zone files, so
// it may fail; nothing is served from the result until it succeeds.
func buildTable(dc *config.DNS, pools map[string]*upstream.Pool, stats *statsRegistry) (*table, error) {
	views, err := newViewSet(dc.Views)
	if err != nil {
		return nil, err
	}
	t := &table{nodes: map[string]*node{}, views: views, maxUDP: dc.MaxUDPSize, pools: map[string]*upstream.Pool{}, zoneByName: map[string]*zone{}}
	keys, err := tsigKeys(dc.TSIGKeys)
	if err != nil {
		return nil, err
	}
	if t.maxUDP < 512 {
		t.maxUDP = 512
	}
	hinfo := &dns.HINFO{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600}, Cpu: "RFC8482"}
	if t.hinfo, err = buildAnswer([]dns.RR{hinfo}, nil, nil); err != nil {
		return nil, err
	}
	if dc.RRL != nil {
		if stats != nil {
			t.rrl = newRRL(dc.RRL, &stats.rrlDrop, &stats.rrlSlip)
		} else {
			t.rrl = newRRL(dc.RRL, nil, nil)
		}
	}
	// Longer zones first, so a child zone's apex owns its node and the
	// parent's records at the cut are shadowed.
	zcs := make([]*config.Zone, len(dc.Zones))
	for i := range dc.Zones {
		zcs[i] = &dc.Zones[i]
	}
	var svcDomain string
	if rc := dc.Registry; rc != nil {
		svcDomain = strings.ToLower(dns.Fqdn(rc.Domain))
		if zc := registryZone(rc, zcs, dc.Listen); zc != nil {
			zcs = append(zcs, zc)
		}
	}
	sort.SliceStable(zcs, func(i, j int) bool { return len(zcs[i].Name) > len(zcs[j].Name) })
	var svcZone *zone
	var all []*zoneData
	for _, zc := range zcs {
		z := &zone{name: strings.ToLower(dns.Fqdn(zc.Name))}
		if stats != nil {
			z.stats = stats.zone(z.name)
		}
		rrs, err := loadRecords(zc)
		if err != nil {
			return nil, err
		}
		ttl := uint32(zc.TTL.D().Seconds())
		zd, err := newZoneData(z, rrs, ttl)
		if err != nil {
			return nil, err
		}
		if zc.Transfer != nil {
			if z.xfr, err = newXfrPolicy(zc.Transfer, keys); err != nil {
				return nil, fmt.Errorf("zone %s: %w", z.name, err)
			}
		}
		if svcDomain != "" && svcZone == nil && dns.IsSubDomain(z.name, svcDomain) {
			// The longest zone holding the domain answers for it; the
			// registry's names hang below svc.<domain>, which exists.
			svcZone = z
			zd.owners["svc."+svcDomain] = true
		}
		z.records = zd.transferRecords()
		if err := addBalanced(zd, zc, pools, views); err != nil {
			return nil, err
		}
		t.zones = append(t.zones, z)
		t.zoneByName[z.name] = z
		all = append(all, zd)
	}
	for _, zd := range all {
		if err := t.addZone(zd); err != nil {
			return nil, err
		}
		for _, l := range zd.lbs {
			for _, gs := range append([][]*group{l.b.groups}, l.b.byView...) {
				for _, g := range gs {
					t.pools[g.pool.Name()] = g.pool
				}
			}
		}
	}
	if svcZone != nil {
		t.svc = newSvcView(dc.Registry, svcZone)
	}
	// Wildcards: each "*.x" node is linked from x.
	for key, n := range t.nodes {
		w := []byte(key)
		if len(w) > 2 && w[0] == 1 && w[1] == '*' {
			if parent := t.nodes[string(parentWire(w))]; parent != nil && parent.zone == n.zone {
				parent.wildcard = n
			}
		}
	}
	return t, nil
}

// lbData carries a zone's balanced names while its nodes are built.
type lbData struct {
	owner string
	b     *balanced
}

// addBalanced builds the zone's load-balanced names, and A/AAAA records
// for the synthetic SRV targets of their backends' addresses.
func addBalanced(zd *zoneData, zc *config.Zone, pools map[string]*upstream.Pool, views *viewSet) error {
	for i := range zc.Balanced {
		bc := &zc.Balanced[i]
		owner := zd.origin
		if bc.Name != "@" {
			owner = strings.ToLower(bc.Name) + "." + zd.origin
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeSRV} {
			if len(zd.sets[rrsetKey{owner, t}]) > 0 {
				return fmt.Errorf("zone %s: %s is load-balanced and also has static %s records", zd.origin, owner, dns.TypeToString[t])
			}
		}
		b, err := newBalanced(bc, owner, pools, views)
		if err != nil {
			return fmt.Errorf("zone %s: %w", zd.origin, err)
		}
		zd.owners[owner] = true
		zd.lbs = append(zd.lbs, lbData{owner, b})
		// Every backend address of every group gets its SRV target name,
		// so a resolver that asks for the target's address is answered.
		for _, gs := range append([][]*group{b.groups}, b.byView...) {
			for _, g := range gs {
				for _, be := range g.pool.Snapshot().All {
					e, ok := endpointOf(be, owner)
					if !ok || !e.ip.IsValid() {
						continue
					}
					name := srvTarget(e.ip, owner)
					var rr dns.RR
					hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: b.ttl}
					if e.ip.Is4() {
						hdr.Rrtype = dns.TypeA
						rr = &dns.A{Hdr: hdr, A: e.ip.AsSlice()}
					} else {
						hdr.Rrtype = dns.TypeAAAA
						rr = &dns.AAAA{Hdr: hdr, AAAA: e.ip.AsSlice()}
					}
					k := rrsetKey{name, hdr.Rrtype}
					if len(zd.sets[k]) == 0 {
						zd.sets[k] = []dns.RR{rr}
						zd.owners[name] = true
					}
				}
			}
		}
	}
	return nil
}

// addZone creates the zone's nodes and packs their answers.
func (t *table) addZone(zd *zoneData) error {
	apex := wireName(zd.origin)
	nodeOf := func(owner string) *node {
		key := string(wireName(owner))
		n := t.nodes[key]
		if n != nil && n.zone != zd.zone {
			return nil // a longer zone owns this name
		}
		if n == nil {
			n = &node{zone: zd.zone}
			t.nodes[key] = n
		}
		return n
	}
	// Every owner and its ancestors up to the apex exist (empty
	// non-terminals answer NODATA, not NXDOMAIN).
	owners := make([]string, 0, len(zd.owners))
	for o := range zd.owners {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	for _, o := range owners {
		for w := wireName(o); w != nil && len(w) >= len(apex); w = parentWire(w) {
			if _, ok := t.nodes[string(w)]; !ok {
				t.nodes[string(w)] = &node{zone: zd.zone}
			}
			if string(w) == string(apex) {
				break
			}
		}
		nodeOf(o)
	}
	// Group sets by owner.
	byOwner := map[string][]uint16{}
	for k := range zd.sets {
		byOwner[k.owner] = append(byOwner[k.owner], k.rtype)
	}
	for owner, types := range byOwner {
		n := nodeOf(owner)
		if n == nil {
			continue
		}
		sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
		for _, typ := range types {
			set := zd.sets[rrsetKey{owner, typ}]
			a, err := buildAnswer(set, nil, zd.glue(typ, set))
			if err != nil {
				return fmt.Errorf("zone %s: %w", zd.origin, err)
			}
			n.answers = append(n.answers, typedAnswer{typ, a})
		}
		if cn := zd.sets[rrsetKey{owner, dns.TypeCNAME}]; len(cn) == 1 {
			a, err := buildAnswer(cn, nil, nil)
			if err != nil {
				return fmt.Errorf("zone %s: %w", zd.origin, err)
			}
			n.fallback = a
			// Chase the chain inside the zone for every type its end
			// holds, so most answers need no second query.
			target, chain := strings.ToLower(cn[0].(*dns.CNAME).Target), []dns.RR(nil)
			for hop := 0; hop < maxChase; hop++ {
				next := zd.sets[rrsetKey{target, dns.TypeCNAME}]
				if len(next) == 0 {
					break
				}
				chain = append(chain, next[0])
				target = strings.ToLower(next[0].(*dns.CNAME).Target)
			}
			for k, set := range zd.sets {
				if k.owner != target || k.rtype == dns.TypeCNAME {
					continue
				}
				other := append(append([]dns.RR(nil), chain...), set...)
				a, err := buildAnswer(cn, other, nil)
				if err != nil {
					return fmt.Errorf("zone %s: %w", zd.origin, err)
				}
				n.answers = append(n.answers, typedAnswer{k.rtype, a})
			}
		}
	}
	for _, l := range zd.lbs {
		if n := nodeOf(l.owner); n != nil {
			n.lb = l.b
		}
	}
	return nil
}

// glue returns the in-zone addresses of the names an NS, MX or SRV set
// points to, for the additional section.
func (zd *zoneData) glue(typ uint16, set []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range set {
		var target string
		switch r := rr.(type) {
		case *dns.NS:
			target = r.Ns
		case *dns.MX:
			target = r.Mx
		case *dns.SRV:
			target = r.Target
		default:
			return nil
		}
		target = strings.ToLower(target)
		out = append(out, zd.sets[rrsetKey{target, dns.TypeA}]...)
		out = append(out, zd.sets[rrsetKey{target, dns.TypeAAAA}]...)
	}
	return out
}

// transferRecords lists the zone's static records for AXFR: the SOA, the
// rest in a stable order, and the SOA again (RFC 5936 §2.2).
func (zd *zoneData) transferRecords() []dns.RR {
	soa := zd.sets[rrsetKey{zd.origin, dns.TypeSOA}][0]
	keys := make([]rrsetKey, 0, len(zd.sets))
	for k := range zd.sets {
		if k.rtype != dns.TypeSOA {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].owner != keys[j].owner {
			return keys[i].owner < keys[j].owner
		}
		return keys[i].rtype < keys[j].rtype
	})
	out := []dns.RR{soa}
	for _, k := range keys {
		out = append(out, zd.sets[k]...)
	}
	return append(out, soa)
}
