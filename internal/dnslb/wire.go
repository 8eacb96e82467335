package dnslb

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// DNS constants used on the hot path, kept here so handle.go reads as the
// protocol does.
const (
	headerLen = 12

	typeA     = 1
	typeNS    = 2
	typeCNAME = 5
	typeSOA   = 6
	typeHINFO = 13
	typeMX    = 15
	typeTXT   = 16
	typeAAAA  = 28
	typeSRV   = 33
	typeOPT   = 41
	typeIXFR  = 251
	typeAXFR  = 252
	typeANY   = 255

	classIN = 1

	rcodeNoError  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5
	rcodeBadVers  = 16 // extended: 1 in the OPT TTL, 0 in the header

	optionECS = 8

	maxNameLen = 255
)

var (
	errShort    = errors.New("message too short")
	errName     = errors.New("bad name")
	errPointer  = errors.New("compression pointer in question")
	errTrailing = errors.New("bad record after the question")
)

// query is one parsed request. It lives in a worker and is reused, so
// parsing allocates nothing.
type query struct {
	id     uint16
	flags  uint16 // the request's flags word
	qdcnt  uint16
	qend   int // offset just past QTYPE/QCLASS
	qtype  uint16
	qclass uint16

	// lname is the question name in lower-case wire format; labels holds
	// the offset in lname of each label, so suffixes can be looked up.
	lname   [maxNameLen]byte
	nlen    int
	labels  [128]uint8
	nlabels int

	edns    bool
	udpSize uint16
	version uint8
	do      bool

	ecs       bool
	ecsFamily uint16
	ecsSource uint8
	ecsAddr   netip.Addr
	ecsRaw    [16]byte // the address bytes as sent, up to source prefix
	ecsRawLen int
}

// name returns the lower-case wire name of the question.
func (q *query) name() []byte { return q.lname[:q.nlen] }

// suffix returns the lower-case wire name with the first i labels cut.
func (q *query) suffix(i int) []byte { return q.lname[q.labels[i]:q.nlen] }

// parseHeader reads the header only; it fails only on a message shorter
// than a header.
func (q *query) parseHeader(m []byte) error {
	if len(m) < headerLen {
		return errShort
	}
	q.id = binary.BigEndian.Uint16(m)
	q.flags = binary.BigEndian.Uint16(m[2:])
	q.qdcnt = binary.BigEndian.Uint16(m[4:])
	return nil
}

// parseQuestion reads the one question and the OPT record, if any. The
// header must have been read and QDCOUNT checked.
func (q *query) parseQuestion(m []byte) error {
	off := headerLen
	q.nlen, q.nlabels = 0, 0
	for {
		if off >= len(m) {
			return errShort
		}
		l := int(m[off])
		if l == 0 {
			if q.nlen+1 > maxNameLen {
				return errName
			}
			q.lname[q.nlen] = 0
			q.nlen++
			off++
			break
		}
		if l&0xC0 != 0 {
			// Queries have one question and nothing to point back to;
			// a pointer here is malformed or hostile.
			return errPointer
		}
		if off+1+l > len(m) || q.nlen+1+l+1 > maxNameLen || q.nlabels >= len(q.labels)-1 {
			return errName
		}
		q.labels[q.nlabels] = uint8(q.nlen)
		q.nlabels++
		q.lname[q.nlen] = byte(l)
		for i := 1; i <= l; i++ {
			c := m[off+i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			q.lname[q.nlen+i] = c
		}
		q.nlen += 1 + l
		off += 1 + l
	}
	// The root's suffix index: labels[nlabels] points at the final 0.
	q.labels[q.nlabels] = uint8(q.nlen - 1)
	if off+4 > len(m) {
		return errShort
	}
	q.qtype = binary.BigEndian.Uint16(m[off:])
	q.qclass = binary.BigEndian.Uint16(m[off+2:])
	off += 4
	q.qend = off
	q.edns, q.ecs = false, false
	// Skip answer and authority records (a query should have none) and
	// look for OPT among the additional ones.
	an := int(binary.BigEndian.Uint16(m[6:])) + int(binary.BigEndian.Uint16(m[8:]))
	ar := int(binary.BigEndian.Uint16(m[10:]))
	for i := 0; i < an+ar; i++ {
		var err error
		var typ, class uint16
		var ttl uint32
		var rdata []byte
		nameStart := off
		off, typ, class, ttl, rdata, err = readRR(m, off)
		if err != nil {
			return err
		}
		if i < an || typ != typeOPT {
			continue
		}
		if q.edns || m[nameStart] != 0 {
			return errTrailing // two OPTs, or an OPT not owned by the root
		}
		q.edns = true
		q.udpSize = class
		q.version = uint8(ttl >> 16)
		q.do = ttl&0x8000 != 0
		if err := q.parseOptions(rdata); err != nil {
			return err
		}
	}
	return nil
}

// readRR skips one resource record starting at off and returns its fields.
func readRR(m []byte, off int) (next int, typ, class uint16, ttl uint32, rdata []byte, err error) {
	for hops := 0; ; hops++ {
		if off >= len(m) || hops > 127 {
			return 0, 0, 0, 0, nil, errTrailing
		}
		l := int(m[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 == 0xC0 {
			off += 2
			break
		}
		if l&0xC0 != 0 {
			return 0, 0, 0, 0, nil, errTrailing
		}
		off += 1 + l
	}
	if off+10 > len(m) {
		return 0, 0, 0, 0, nil, errTrailing
	}
	typ = binary.BigEndian.Uint16(m[off:])
	class = binary.BigEndian.Uint16(m[off+2:])
	ttl = binary.BigEndian.Uint32(m[off+4:])
	rdlen := int(binary.BigEndian.Uint16(m[off+8:]))
	off += 10
	if off+rdlen > len(m) {
		return 0, 0, 0, 0, nil, errTrailing
	}
	return off + rdlen, typ, class, ttl, m[off : off+rdlen], nil
}

// parseOptions reads EDNS options; only Client Subnet matters here.
func (q *query) parseOptions(b []byte) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return errTrailing
		}
		code := binary.BigEndian.Uint16(b)
		l := int(binary.BigEndian.Uint16(b[2:]))
		if 4+l > len(b) {
			return errTrailing
		}
		if code == optionECS {
			if err := q.parseECS(b[4 : 4+l]); err != nil {
				return err
			}
		}
		b = b[4+l:]
	}
	return nil
}

// parseECS reads an EDNS Client Subnet option (RFC 7871).
func (q *query) parseECS(b []byte) error {
	if len(b) < 4 || q.ecs {
		return errTrailing
	}
	fam := binary.BigEndian.Uint16(b)
	src := b[2]
	scope := b[3]
	addr := b[4:]
	var max int
	switch fam {
	case 1:
		max = 32
	case 2:
		max = 128
	default:
		return errTrailing
	}
	// RFC 7871 §6: the address holds exactly ceil(source/8) bytes and the
	// scope must be 0 in queries.
	if int(src) > max || scope != 0 || len(addr) != (int(src)+7)/8 {
		return errTrailing
	}
	var full [16]byte
	copy(full[:], addr)
	copy(q.ecsRaw[:], addr)
	q.ecsRawLen = len(addr)
	if fam == 1 {
		q.ecsAddr = netip.AddrFrom4([4]byte(full[:4]))
	} else {
		q.ecsAddr = netip.AddrFrom16(full)
	}
	q.ecs, q.ecsFamily, q.ecsSource = true, fam, src
	return nil
}
