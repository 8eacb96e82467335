package bgp

import (
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strata-lb/strata/internal/config"
)

func family(v4 bool) *api.Family {
	if v4 {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err) // only for messages of the api package, which always marshal
	}
	return a
}

// Attrs are the path attributes a node sets on every route it announces,
// beyond origin and next hop: what makes a backup node's route worse
// than its primary's, and the communities the routers' policies match.
type Attrs struct {
	// MED is sent when above 0; routers read a missing MED as 0.
	MED uint32
	// Prepend is how many times the node's own ASN is put in front of
	// the AS path (GoBGP adds it once more toward each eBGP peer).
	Prepend     int
	ASN         uint32
	Communities []uint32
}

// AttrsOf reads the route attributes of cfg, which validation checked.
func AttrsOf(cfg *config.L4BGP) Attrs {
	a := Attrs{MED: uint32(cfg.MED), Prepend: cfg.ASPathPrepend, ASN: uint32(cfg.ASN)}
	for _, c := range cfg.Communities {
		if v, err := config.ParseCommunity(c); err == nil {
			a.Communities = append(a.Communities, v)
		}
	}
	return a
}

// Equal says whether a and b make the same routes.
func (a Attrs) Equal(b Attrs) bool {
	return a.MED == b.MED && a.Prepend == b.Prepend && a.ASN == b.ASN && slices.Equal(a.Communities, b.Communities)
}

// path is the route of p with an unspecified next hop, which GoBGP
// replaces with the session's own address toward each eBGP peer: every
// node announces itself as the next hop of the VIP.
func path(p netip.Prefix, at Attrs) *api.Path {
	nlri := mustAny(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	origin := mustAny(&api.OriginAttribute{Origin: 0}) // IGP
	v4 := p.Addr().Is4()
	var nh *anypb.Any
	if v4 {
		nh = mustAny(&api.NextHopAttribute{NextHop: "0.0.0.0"})
	} else {
		nh = mustAny(&api.MpReachNLRIAttribute{Family: family(false), NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
	}
	attrs := []*anypb.Any{origin, nh}
	if at.Prepend > 0 {
		asns := make([]uint32, at.Prepend)
		for i := range asns {
			asns[i] = at.ASN
		}
		attrs = append(attrs, mustAny(&api.AsPathAttribute{Segments: []*api.AsSegment{{Type: api.AsSegment_AS_SEQUENCE, Numbers: asns}}}))
	}
	if at.MED > 0 {
		attrs = append(attrs, mustAny(&api.MultiExitDiscAttribute{Med: at.MED}))
	}
	if len(at.Communities) > 0 {
		attrs = append(attrs, mustAny(&api.CommunitiesAttribute{Communities: at.Communities}))
	}
	return &api.Path{Family: family(v4), Nlri: nlri, Pattrs: attrs}
}
