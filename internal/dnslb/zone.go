package dnslb

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/upstream"
)

// table is everything one config built: the names of every zone, the
// views and the limits. Queries read it through an atomic pointer, so a
// reload swaps it whole.
type table struct {
	// nodes maps every existing name (lower-case wire format), including
	// empty non-terminals, to its node.
	nodes  map[string]*node
	zones  []*zone
	views  *viewSet
	maxUDP int
	rrl    *rrl
	// hinfo is the RFC 8482 answer to ANY: one HINFO record owned by the
	// question name.
	hinfo *answer
	// pools are the pools that balanced names read, by name.
	pools map[string]*upstream.Pool
	// zoneByName finds a zone by its lower-case fqdn (for transfers).
	zoneByName map[string]*zone
	// svc answers the names under svc.<domain> from the service
	// registry (dns.registry); nil when off.
	svc *svcView
}

// zone is one served zone.
type zone struct {
	// name is the apex in presentation format, lower case, fully qualified.
	name string
	// soa is the packed SOA record for the authority section of negative
	// answers, its owner written out and its TTL the negative TTL.
	soa   []byte
	stats *zoneStats
	// records are the zone's static records, SOA first and last, for
	// zone transfers; xfr says who may have them (nil: nobody).
	records []dns.RR
	xfr     *xfrPolicy
}

// node is one name of a zone.
type node struct {
	zone *zone
	// answers are the static answers by query type. A name with a CNAME
	// has an answer for the CNAME itself and one per type its target
	// holds in the zone (the chased chain), and fallback set to the
	// CNAME alone.
	answers []typedAnswer
	// fallback answers every type the node has no answer for (a CNAME);
	// nil means NODATA.
	fallback *answer
	// wildcard is the node "*.<this name>", if it exists.
	wildcard *node
	// lb is the load-balanced name at this node, if any.
	lb *balanced
}

type typedAnswer struct {
	qtype uint16
	a     *answer
}

// lookup returns the static answer for qtype.
func (n *node) lookup(qtype uint16) *answer {
	for i := range n.answers {
		if n.answers[i].qtype == qtype {
			return n.answers[i].a
		}
	}
	return nil
}

// wireName turns a presentation name into lower-case wire format.
func wireName(name string) []byte {
	name = strings.ToLower(dns.Fqdn(name))
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// parentWire returns the wire name with its first label cut, or nil for
// the root.
func parentWire(w []byte) []byte {
	if len(w) <= 1 {
		return nil
	}
	return w[1+int(w[0]):]
}
