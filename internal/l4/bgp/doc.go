// Package bgp is the l4 role's BGP speaker: an embedded GoBGP server that
// keeps a session with each configured router and announces, or
// withdraws, one host route per VIP. Several l4 nodes announcing the same
// VIP make the router install one route with a next hop per node, and its
// ECMP spreads clients over them; a node that withdraws, or whose session
// ends, leaves the group.
//
// The package knows nothing of services or backends: the l4 server
// decides when a VIP is ready and calls Announce and Withdraw.
package bgp
