// Package sockopt holds the socket options strata's data planes share.
//
// UDP servers (the dns role, l4's UDP services) grow their receive
// buffers: the kernel's default (net.core.rmem_default, about 208 KiB)
// holds a few hundred datagrams, and a burst that arrives while the
// socket's reader is off the CPU overflows it, which the kernel counts as
// RcvbufErrors and the client sees as a lost query. Unbound and NSD offer
// so-rcvbuf for the same reason.
package sockopt
