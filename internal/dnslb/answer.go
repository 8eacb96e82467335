package dnslb

import (
	"encoding/binary"
	"fmt"

	"github.com/miekg/dns"
)

// answer is a prebuilt response body: the packed records that follow the
// question. Records owned by the question name start with a compression
// pointer to offset 12 (the question), so one body serves any spelling
// of the name and a wildcard's body serves every name it covers.
type answer struct {
	rcode      uint8
	an, ns, ar uint16
	body       []byte
}

// packRR packs rr. When ownedByQuestion is true the owner is written as a
// pointer to the question name; otherwise it is written out in full.
func packRR(rr dns.RR, ownedByQuestion bool) ([]byte, error) {
	buf := make([]byte, 65535)
	if ownedByQuestion {
		c := dns.Copy(rr)
		c.Header().Name = "."
		n, err := dns.PackRR(c, buf, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("packing %s: %w", rr, err)
		}
		// The root owner is one zero byte; a pointer takes its place.
		out := make([]byte, 0, n+1)
		out = append(out, 0xC0, headerLen)
		return append(out, buf[1:n]...), nil
	}
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("packing %s: %w", rr, err)
	}
	return append([]byte(nil), buf[:n]...), nil
}

// buildAnswer packs the answer records: the first group owned by the
// question, then records owned by other names (a chased CNAME's target),
// then additional records.
func buildAnswer(own, other, additional []dns.RR) (*answer, error) {
	a := &answer{}
	for _, rr := range own {
		b, err := packRR(rr, true)
		if err != nil {
			return nil, err
		}
		a.body = append(a.body, b...)
		a.an++
	}
	for _, rr := range other {
		b, err := packRR(rr, false)
		if err != nil {
			return nil, err
		}
		a.body = append(a.body, b...)
		a.an++
	}
	for _, rr := range additional {
		b, err := packRR(rr, false)
		if err != nil {
			return nil, err
		}
		a.body = append(a.body, b...)
		a.ar++
	}
	return a, nil
}

// response assembles replies in a worker's buffer.
type response struct {
	buf []byte
}

// start writes the header and the question copied from the request, so
// the question's case is kept. AA is set for answers from our zones.
func (r *response) start(req []byte, q *query, rcode uint8, aa bool) {
	r.buf = append(r.buf[:0], req[:q.qend]...)
	flags := uint16(0x8000) | q.flags&0x0100 // QR, and RD copied
	if aa {
		flags |= 0x0400
	}
	flags |= uint16(rcode & 0x0F)
	binary.BigEndian.PutUint16(r.buf[2:], flags)
	binary.BigEndian.PutUint16(r.buf[4:], 1)
	binary.BigEndian.PutUint16(r.buf[6:], 0)
	binary.BigEndian.PutUint16(r.buf[8:], 0)
	binary.BigEndian.PutUint16(r.buf[10:], 0)
}

// headerOnly writes a reply without a question, for requests whose
// question could not be read.
func (r *response) headerOnly(req []byte, rcode uint8) {
	r.buf = append(r.buf[:0], req[:headerLen]...)
	flags := uint16(0x8000) | binary.BigEndian.Uint16(req[2:])&0x7900 // QR, opcode and RD
	flags |= uint16(rcode & 0x0F)
	binary.BigEndian.PutUint16(r.buf[2:], flags)
	for i := 4; i < headerLen; i++ {
		r.buf[i] = 0
	}
}

func (r *response) add(an, ns, ar uint16) {
	binary.BigEndian.PutUint16(r.buf[6:], binary.BigEndian.Uint16(r.buf[6:])+an)
	binary.BigEndian.PutUint16(r.buf[8:], binary.BigEndian.Uint16(r.buf[8:])+ns)
	binary.BigEndian.PutUint16(r.buf[10:], binary.BigEndian.Uint16(r.buf[10:])+ar)
}

// body appends a prebuilt answer.
func (r *response) body(a *answer) {
	r.buf = append(r.buf, a.body...)
	r.add(a.an, a.ns, a.ar)
}

// authority appends the zone's SOA for a negative answer.
func (r *response) authority(z *zone) {
	r.buf = append(r.buf, z.soa...)
	r.add(0, 1, 0)
}

// truncate marks the reply truncated (TC) and drops every record after
// the question.
func (r *response) truncate(q *query) {
	r.buf = r.buf[:q.qend]
	r.buf[2] |= 0x02
	binary.BigEndian.PutUint16(r.buf[6:], 0)
	binary.BigEndian.PutUint16(r.buf[8:], 0)
	binary.BigEndian.PutUint16(r.buf[10:], 0)
}

// opt appends our OPT record: our buffer size, the extended rcode, and the
// client subnet echoed with the scope the answer depended on.
func (r *response) opt(q *query, size int, extRcode uint8, scope int) {
	r.buf = append(r.buf, 0, 0, typeOPT, byte(size>>8), byte(size), extRcode, 0, 0, 0)
	if !q.ecs || scope < 0 {
		r.buf = append(r.buf, 0, 0)
	} else {
		l := 4 + q.ecsRawLen
		r.buf = append(r.buf, byte((4+l)>>8), byte(4+l), 0, optionECS, byte(l>>8), byte(l),
			byte(q.ecsFamily>>8), byte(q.ecsFamily), q.ecsSource, byte(scope))
		r.buf = append(r.buf, q.ecsRaw[:q.ecsRawLen]...)
	}
	r.add(0, 0, 1)
}
