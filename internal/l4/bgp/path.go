package bgp

import (
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
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

// path is the route of p with an unspecified next hop, which GoBGP
// replaces with the session's own address toward each eBGP peer: every
// node announces itself as the next hop of the VIP.
func path(p netip.Prefix) *api.Path {
	nlri := mustAny(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	origin := mustAny(&api.OriginAttribute{Origin: 0}) // IGP
	v4 := p.Addr().Is4()
	var nh *anypb.Any
	if v4 {
		nh = mustAny(&api.NextHopAttribute{NextHop: "0.0.0.0"})
	} else {
		nh = mustAny(&api.MpReachNLRIAttribute{Family: family(false), NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
	}
	return &api.Path{Family: family(v4), Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}}
}
