// Package sockopt holds the socket options strata's data planes share.
//
// UDP servers (the dns role, l4's UDP services) grow their receive
// buffers: the kernel's default (net.core.rmem_default, about 208 KiB)
// holds a few hundred datagrams, and a burst that arrives while the
// socket's reader is off the CPU overflows it, which the kernel counts as
// RcvbufErrors and the client sees as a lost query. Unbound and NSD offer
// so-rcvbuf for the same reason.
//
// The l4 and l7 listeners bind with IP_FREEBIND (Listen, ListenPacket),
// so that a node listens on a VIP before the VIP is on one of its
// interfaces and serves the moment keepalived (or anything else) adds it.
package sockopt
