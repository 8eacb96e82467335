package xdp

import (
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"
)

// Counters are what the program counted for a service or a real, summed
// over every CPU. They see only the client → server direction: replies
// never cross the balancer.
type Counters struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Flows counts new flows: first packets of flows not in the
	// connection table, and every TCP SYN.
	Flows uint64 `json:"flows"`
}

// ServiceStats are one service's counters and its reals'.
type ServiceStats struct {
	Key   ServiceKey  `json:"-"`
	Mode  Mode        `json:"-"`
	Total Counters    `json:"total"`
	Reals []RealStats `json:"reals"`
	// Fingerprint identifies the Maglev table in the kernel (see
	// balance.MaglevFingerprint); 0 when it is empty.
	Fingerprint uint64 `json:"fingerprint"`
}

// RealStats are one real's counters in one service.
type RealStats struct {
	Name    string     `json:"name"`
	Addr    netip.Addr `json:"addr"`
	InTable bool       `json:"in_table"`
	Counters
}

// Stats reads every service's counters from the kernel.
func (d *Dataplane) Stats() []ServiceStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]ServiceStats, 0, len(d.services))
	for _, s := range d.services {
		st := ServiceStats{Key: s.key, Mode: s.mode, Total: sum(d.objs.SvcStats, s.id), Fingerprint: s.fingerprint}
		in := map[string]bool{}
		for _, n := range s.ready {
			in[n] = true
		}
		for _, r := range s.reals {
			st.Reals = append(st.Reals, RealStats{Name: r.name, Addr: r.addr, InTable: in[r.name], Counters: sum(d.objs.RealStats, r.id)})
		}
		sort.Slice(st.Reals, func(i, j int) bool { return st.Reals[i].Name < st.Reals[j].Name })
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

func sum(m *ebpf.Map, id uint32) Counters {
	var per []lbCounters
	var c Counters
	if err := m.Lookup(id, &per); err != nil {
		return c
	}
	for _, p := range per {
		c.Packets += p.Packets
		c.Bytes += p.Bytes
		c.Flows += p.Flows
	}
	return c
}

// Global counter names, in lb.c's order.
var globalNames = []string{"passed", "fragments", "no_real", "icmp_forwarded", "encap_failed"}

// Global reads the program's global counters: packets handed to the stack
// (not for a VIP, or fragments) and packets dropped or specially handled.
func (d *Dataplane) Global() map[string]uint64 {
	out := map[string]uint64{}
	for i, n := range globalNames {
		if t, err := sumPerCPU(d.objs.LbStats, uint32(i)); err == nil {
			out[n] = t
		}
	}
	return out
}

// sumPerCPU is entry i of a per-CPU array of counters, summed over every
// CPU.
func sumPerCPU(m *ebpf.Map, i uint32) (uint64, error) {
	var per []uint64
	if err := m.Lookup(i, &per); err != nil {
		return 0, err
	}
	var t uint64
	for _, v := range per {
		t += v
	}
	return t, nil
}

// Flow is one entry of the kernel's connection table.
type Flow struct {
	Service ServiceKey
	Client  netip.AddrPort
	Backend string // empty when the real has left the pool
}

// Flows reads up to max entries of the connection table (all when max is
// 0). The table is an LRU: entries stay until pushed out by newer flows,
// so it lists recent flows, not only open connections.
func (d *Dataplane) Flows(max int) []Flow {
	d.mu.Lock()
	defer d.mu.Unlock()
	type owner struct {
		name string
		gen  uint32
	}
	byID := map[uint32]owner{}
	for _, s := range d.services {
		for _, r := range s.reals {
			byID[r.id] = owner{r.name, r.gen}
		}
	}
	var out []Flow
	var k lbFlowKey
	var v lbFlow
	it := d.objs.Flows.Iterate()
	for it.Next(&k, &v) {
		f := Flow{
			Service: ServiceKey{Addr: netip.AddrPortFrom(wordsAddr(k.Dst, k.Family), ntohs(k.Dport)), Proto: k.Proto},
			Client:  netip.AddrPortFrom(wordsAddr(k.Src, k.Family), ntohs(k.Sport)),
		}
		if o, ok := byID[v.Real]; ok && o.gen == v.Gen {
			f.Backend = o.name
		}
		out = append(out, f)
		if max > 0 && len(out) >= max {
			break
		}
	}
	return out
}
