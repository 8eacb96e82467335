// Package xdp is strata's in-kernel L4 data plane: the control plane of
// the XDP program in lb.c, which forwards a virtual service's packets to
// its real servers without holding TCP state, in LVS's direct-routing
// (DR) or tunnel (IP-in-IP) mode, so that replies go from the real server
// straight to the client.
//
// The kernel side holds a VIP map (address, port, protocol → service), a
// map of real servers, one Maglev table per service (the very table
// internal/balance builds, M = 65537), an LRU connection table that keeps
// established flows on their real when a table changes, and per-CPU
// counters per service and per real. This package loads the program,
// attaches it to devices (native XDP where the driver has it, generic
// otherwise), turns pool snapshots into tables and swaps each table whole,
// and reads the counters and connections back.
//
// decap.c is "strata decap", the other end of tunnel mode: it strips the
// outer header on a real server whose kernel has no ipip module.
//
// One file per concern: gen.go (bpf2go), dataplane.go (load and close),
// attach.go (devices), service.go (VIPs and tables), neigh.go (next-hop
// MACs), stats.go (counters and connections), decap.go (strata decap).
package xdp
