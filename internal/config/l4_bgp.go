package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// L4BGP makes an l4 node a BGP speaker that announces the VIPs of its
// services to routers, so several nodes hold one VIP and the routers'
// ECMP spreads clients over them (internal/l4/bgp).
type L4BGP struct {
	// ASN is this node's autonomous system number.
	ASN int64 `yaml:"asn"`
	// RouterID is the BGP identifier, an IPv4 address unique among the
	// routers' peers.
	RouterID string `yaml:"router_id"`
	// ListenPort is where the speaker accepts sessions; 0 does not listen
	// and only dials out to the peers.
	ListenPort int `yaml:"listen_port"`
	// Peers are the routers to announce to; at least one is required.
	Peers []L4BGPPeer `yaml:"peers"`
	// HoldTime is the hold time proposed to the peers (default 3s, the
	// least FRR accepts): a dead node's routes leave within it.
	HoldTime Duration `yaml:"hold_time"`
	// Keepalive is the keepalive interval (default 1s, a third of
	// hold_time as RFC 4271 suggests).
	Keepalive Duration `yaml:"keepalive"`
	// Lameduck is how long the node keeps serving after it withdrew its
	// routes at shutdown, while the routers move clients away (default
	// 2s).
	Lameduck Duration `yaml:"lameduck"`
	// MED is the MULTI_EXIT_DISC sent with every route (default 0: none
	// sent, which routers read as 0). A backup node sets a higher MED
	// than its primary, so the routers prefer the primary while it
	// announces.
	MED int64 `yaml:"med"`
	// ASPathPrepend is how many extra times the node puts its own ASN in
	// front of the AS path (default 0). A longer path loses to a shorter
	// one before MED is even compared, and unlike MED it is compared
	// between routes from different neighbouring ASes too.
	ASPathPrepend int `yaml:"as_path_prepend"`
	// Communities are BGP communities sent with every route, each
	// "ASN:VALUE" or one of no-export, no-advertise, no-export-subconfed.
	Communities []string `yaml:"communities"`
	// VIPOnLo puts each announced VIP on the lo interface by netlink
	// (default true), so that the node's kernel accepts the packets the
	// routers send it. Addresses that were on lo already are left alone.
	VIPOnLo *bool `yaml:"vip_on_lo"`
}

// VIPOnLoEnabled says whether the node manages its VIPs on lo.
func (b *L4BGP) VIPOnLoEnabled() bool { return b.VIPOnLo == nil || *b.VIPOnLo }

// L4BGPPeer is one router the node keeps a session with.
type L4BGPPeer struct {
	// Address is the router's IP address.
	Address string `yaml:"address"`
	// ASN is the router's autonomous system number.
	ASN int64 `yaml:"asn"`
	// Port is the router's BGP port (default 179).
	Port int `yaml:"port"`
	// PasswordFile names a file holding the TCP MD5 password of the
	// session (RFC 2385); none when empty.
	PasswordFile string `yaml:"password_file"`
}

// Defaults of l4.bgp: short timers, so a node that dies or withdraws
// leaves the routers' ECMP groups within a few seconds.
const (
	DefaultL4BGPPort      = 179
	DefaultL4BGPHoldTime  = Duration(3 * time.Second)
	DefaultL4BGPKeepalive = Duration(time.Second)
	DefaultL4BGPLameduck  = Duration(2 * time.Second)
	// MaxASN is the largest four-octet AS number (RFC 6793).
	MaxASN = 1<<32 - 1
	// MaxL4BGPPrepend bounds as_path_prepend: more than a few extra hops
	// changes nothing in practice, and routers cap path lengths.
	MaxL4BGPPrepend = 10
)

// wellKnownCommunities are the RFC 1997 communities the config names.
var wellKnownCommunities = map[string]uint32{
	"no-export":           0xFFFFFF01,
	"no-advertise":        0xFFFFFF02,
	"no-export-subconfed": 0xFFFFFF03,
}

// ParseCommunity reads a community as l4.bgp.communities writes it:
// "ASN:VALUE", both from 0 to 65535, or a well-known name.
func ParseCommunity(s string) (uint32, error) {
	if v, ok := wellKnownCommunities[s]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("want ASN:VALUE or no-export, no-advertise, no-export-subconfed, got %q", s)
	}
	a, err1 := strconv.ParseUint(hi, 10, 16)
	b, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("want ASN:VALUE with both from 0 to 65535, got %q", s)
	}
	return uint32(a)<<16 | uint32(b), nil
}

func init() {
	onDefaults(l4BGPDefaults)
	onValidate(l4BGPValidate)
}

func l4BGPDefaults(c *Config, absent func(isZero bool, path string) bool) {
	if c.L4 == nil || c.L4.BGP == nil {
		return
	}
	b := c.L4.BGP
	if absent(b.HoldTime == 0, "l4.bgp.hold_time") {
		b.HoldTime = DefaultL4BGPHoldTime
	}
	if absent(b.Keepalive == 0, "l4.bgp.keepalive") {
		b.Keepalive = DefaultL4BGPKeepalive
	}
	if absent(b.Lameduck == 0, "l4.bgp.lameduck") {
		b.Lameduck = DefaultL4BGPLameduck
	}
	if b.VIPOnLo == nil {
		on := true
		b.VIPOnLo = &on
	}
	for i := range b.Peers {
		if b.Peers[i].Port == 0 {
			b.Peers[i].Port = DefaultL4BGPPort
		}
	}
}

func l4BGPValidate(v *validator, _ map[string]bool) {
	if v.c.L4 == nil || v.c.L4.BGP == nil {
		return
	}
	b := v.c.L4.BGP
	if b.ASN < 1 || b.ASN > MaxASN {
		v.errorf("l4.bgp.asn", "asn is required, from 1 to 4294967295, got %d", b.ASN)
	}
	if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() || a.IsUnspecified() {
		v.errorf("l4.bgp.router_id", "router_id must be an IPv4 address other than 0.0.0.0, got %q", b.RouterID)
	}
	if b.ListenPort < 0 || b.ListenPort > 65535 {
		v.errorf("l4.bgp.listen_port", "must be a port from 0 (do not listen) to 65535, got %d", b.ListenPort)
	}
	if len(b.Peers) == 0 {
		v.errorf("l4.bgp.peers", "at least one peer is required")
	}
	// BGP counts its timers in whole seconds, and RFC 4271 allows no
	// hold time from 1s to 2s.
	if b.HoldTime < Duration(3*time.Second) || b.HoldTime%Duration(time.Second) != 0 || b.HoldTime > Duration(65535*time.Second) {
		v.errorf("l4.bgp.hold_time", "must be whole seconds from 3s to 65535s, got %s", b.HoldTime)
	}
	if b.Keepalive < Duration(time.Second) || b.Keepalive%Duration(time.Second) != 0 || b.Keepalive >= b.HoldTime {
		v.errorf("l4.bgp.keepalive", "must be whole seconds, at least 1s and less than hold_time (%s), got %s", b.HoldTime, b.Keepalive)
	}
	if b.Lameduck < 0 {
		v.errorf("l4.bgp.lameduck", "must not be negative, got %s", b.Lameduck)
	}
	if b.MED < 0 || b.MED > MaxASN {
		v.errorf("l4.bgp.med", "must be from 0 to 4294967295, got %d", b.MED)
	}
	if b.ASPathPrepend < 0 || b.ASPathPrepend > MaxL4BGPPrepend {
		v.errorf("l4.bgp.as_path_prepend", "must be from 0 to %d, got %d", MaxL4BGPPrepend, b.ASPathPrepend)
	}
	for i, c := range b.Communities {
		if _, err := ParseCommunity(c); err != nil {
			v.errorf(fmt.Sprintf("l4.bgp.communities[%d]", i), "%v", err)
		}
	}
	seen := map[string]string{}
	for i, p := range b.Peers {
		pp := fmt.Sprintf("l4.bgp.peers[%d]", i)
		if a, err := netip.ParseAddr(p.Address); err != nil || a.IsUnspecified() || a.Zone() != "" {
			v.errorf(pp+".address", "must be an IP address, got %q", p.Address)
		} else if prev, dup := seen[a.String()]; dup {
			v.errorf(pp+".address", "peer %s is listed twice (first at line %d)", a, v.line(prev))
		} else {
			seen[a.String()] = pp + ".address"
		}
		if p.ASN < 1 || p.ASN > MaxASN {
			v.errorf(pp+".asn", "asn is required, from 1 to 4294967295, got %d", p.ASN)
		}
		if p.Port < 1 || p.Port > 65535 {
			v.errorf(pp+".port", "must be a port from 1 to 65535, got %d", p.Port)
		}
	}
	// A service on a wildcard or a name has no VIP to announce.
	for i, s := range v.c.L4.Services {
		host, _, _, err := ParseL4Listen(s.Listen)
		if err != nil {
			continue // reported by the services' own checks
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			v.errorf(fmt.Sprintf("l4.services[%d].listen", i), "with l4.bgp every service announces its VIP, so listen needs a literal IP address, got %q", host)
		}
	}
}
