package dnslb

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// worker is the per-goroutine state of the hot path: a parsed query, a
// response buffer and scratch space, reused for every query so answering
// allocates nothing.
type worker struct {
	q     query
	r     response
	rng   *rand.PCG
	pick  []*endpoint
	idx   []int
	shard int
}

func newWorker(shard int, seed uint64) *worker {
	return &worker{
		r:     response{buf: make([]byte, 0, 65535+2)},
		rng:   rand.NewPCG(seed, uint64(shard)*0x9E3779B97F4A7C15+1),
		shard: shard,
	}
}

func (w *worker) rand() uint64 { return w.rng.Uint64() }

// handle answers one message. udp selects truncation to the client's
// buffer; client is the peer's address. It returns nil when nothing must
// be sent (a response, a runt, a rate-limited drop). The returned slice
// is the worker's buffer, valid until the next call.
func (s *Server) handle(w *worker, req []byte, client netip.AddrPort, udp bool) []byte {
	t := s.tab.Load()
	if t == nil {
		return nil
	}
	began := time.Now()
	q, r := &w.q, &w.r
	if q.parseHeader(req) != nil || q.flags&0x8000 != 0 {
		// Too short to answer, or a response: never answer a response,
		// or two servers could bounce packets forever.
		return nil
	}
	zs := s.stats.none
	rcode := rcodeNoError
	switch {
	case (q.flags>>11)&0xF != 0:
		rcode = rcodeNotImp
		r.headerOnly(req, rcodeNotImp)
	case q.qdcnt != 1:
		rcode = rcodeFormErr
		r.headerOnly(req, rcodeFormErr)
	case q.parseQuestion(req) != nil:
		q.qtype = 0
		rcode = rcodeFormErr
		r.headerOnly(req, rcodeFormErr)
	case q.edns && q.version > 0:
		// RFC 6891 §6.1.3: an unknown EDNS version gets BADVERS, which
		// is 16: the upper bits travel in the OPT record.
		rcode = rcodeBadVers
		r.start(req, q, 0, false)
		r.opt(q, t.maxUDP, 1, -1)
	default:
		var z *zone
		scope := -1
		rcode, z, scope = s.answer(t, w, req, client.Addr())
		if z != nil && z.stats != nil {
			zs = z.stats
		}
		if q.edns {
			r.opt(q, t.maxUDP, 0, scope)
		}
		if udp {
			limit := 512
			if q.edns {
				limit = min(max(int(q.udpSize), 512), t.maxUDP)
			}
			if len(r.buf) > limit {
				r.truncate(q)
				if q.edns {
					r.opt(q, t.maxUDP, 0, scope)
				}
				s.stats.tc.Add(1)
			}
		}
	}
	if udp && t.rrl != nil {
		switch t.rrl.check(client.Addr(), began.UnixNano()) {
		case rrlDrop:
			return nil
		case rrlSlip:
			if len(r.buf) >= q.qend && q.qend > headerLen {
				r.truncate(q)
			}
		}
	}
	zs.add(w.shard, q.qtype, rcode)
	s.stats.lat.observe(w.shard, int64(time.Since(began)))
	return r.buf
}

// answer builds the reply to a well-formed query. It returns the rcode,
// the zone that answered (nil when none) and the ECS scope to echo (-1
// for none).
func (s *Server) answer(t *table, w *worker, req []byte, client netip.Addr) (int, *zone, int) {
	q, r := &w.q, &w.r
	scope := 0
	if q.qclass != classIN {
		r.start(req, q, rcodeRefused, false)
		return rcodeRefused, nil, -1
	}
	if t.svc != nil {
		// Names under svc.<domain> come from the registry's own table,
		// rebuilt when the registry changes; names that are not there
		// fall through to the zone, which answers NXDOMAIN.
		if e := t.svc.lookup(q.name()); e != nil {
			return t.svc.answer(t, w, req, e)
		}
	}
	n := t.nodes[string(q.name())]
	if n == nil {
		// Find the closest encloser: the longest existing ancestor.
		var enc *node
		for i := 1; i <= q.nlabels; i++ {
			if enc = t.nodes[string(q.suffix(i))]; enc != nil {
				break
			}
		}
		switch {
		case enc == nil:
			r.start(req, q, rcodeRefused, false)
			return rcodeRefused, nil, -1
		case enc.wildcard != nil:
			n = enc.wildcard
		default:
			r.start(req, q, rcodeNXDomain, true)
			r.authority(enc.zone)
			return rcodeNXDomain, enc.zone, scope
		}
	}
	z := n.zone
	switch q.qtype {
	case typeAXFR, typeIXFR:
		// Zone transfers are not offered.
		r.start(req, q, rcodeRefused, true)
		return rcodeRefused, z, scope
	case typeANY:
		// RFC 8482: one synthesized HINFO instead of everything.
		if n.lb == nil && len(n.answers) == 0 {
			break
		}
		r.start(req, q, rcodeNoError, true)
		r.body(t.hinfo)
		return rcodeNoError, z, scope
	case typeA, typeAAAA, typeSRV:
		if n.lb == nil {
			break
		}
		r.start(req, q, rcodeNoError, true)
		groups := n.lb.groups
		if n.lb.byView != nil {
			addr := client
			usedECS := q.ecs && q.ecsSource > 0
			if usedECS {
				addr = q.ecsAddr
			}
			v, bits := t.views.match(addr)
			if v >= 0 && n.lb.byView[v] != nil {
				groups = n.lb.byView[v]
			}
			if usedECS {
				// The answer holds for the matched view's prefix, or
				// for the client's whole subnet when none matched.
				scope = int(q.ecsSource)
				if v >= 0 {
					scope = bits
				}
			}
		}
		if n.lb.answer(w, r, q.qtype, groups) == 0 {
			r.authority(z)
		}
		return rcodeNoError, z, scope
	}
	if a := n.lookup(q.qtype); a != nil {
		r.start(req, q, rcodeNoError, true)
		r.body(a)
		return rcodeNoError, z, scope
	}
	if n.fallback != nil {
		r.start(req, q, rcodeNoError, true)
		r.body(n.fallback)
		return rcodeNoError, z, scope
	}
	r.start(req, q, rcodeNoError, true)
	r.authority(z)
	return rcodeNoError, z, scope
}
