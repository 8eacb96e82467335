// Package l4 is strata's LVS-style TCP/UDP load balancer, in user space.
//
// A virtual service is a protocol and an address with one port or a range
// of ports, in front of one pool. Every new TCP connection or UDP session
// is given a backend by the service's scheduler — the core's algorithms
// (rr, wrr, lc, wlc, sed, nq, sh, dh, mh …) and the LVS ones this package
// adds (lblc, lblcr, fo, ovf, and mh's fallback and port options) — after
// persistence has had its say, and subject to the service's limits and
// defences. Because the kernel here has no IPVS, strata proxies: it is a
// FULLNAT, the backend sees strata's address, and a PROXY protocol header
// (v1 or v2) tells backends that want it who the client is.
//
// The TCP data path is io.Copy between two *net.TCPConn, which Go turns
// into splice(2) on Linux, in bounded chunks so the connection table can
// show bytes as they flow; each direction half-closes on its own. A
// direction waits for its socket to be readable before it splices, so an
// idle connection holds no pipe and no buffer, only its two goroutines.
//
// Reloads swap a listener's service atomically: established connections
// keep the service (and the old runtime) they started with until they end.
// Draining backends (weight 0, state draining, unhealthy) take no new
// connections and keep the ones they have.
package l4
