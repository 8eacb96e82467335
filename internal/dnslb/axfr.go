package dnslb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
)

// xfrPolicy is who may transfer a zone, and with which key.
type xfrPolicy struct {
	allow []netip.Prefix
	key   *tsigKey // nil: unsigned transfers are allowed
}

type tsigKey struct {
	name, alg, secret string
}

// xfrChunk is how many records one message of a transfer holds; well
// under 64 KiB for ordinary records.
const xfrChunk = 200

func newXfrPolicy(x *config.Transfer, keys map[string]*tsigKey) (*xfrPolicy, error) {
	p := &xfrPolicy{}
	for _, a := range x.Allow {
		pre, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("transfer.allow: %w", err)
		}
		p.allow = append(p.allow, pre.Masked())
	}
	if x.Key != "" {
		p.key = keys[strings.ToLower(dns.Fqdn(x.Key))]
		if p.key == nil {
			return nil, fmt.Errorf("transfer.key: no key named %q", x.Key)
		}
	}
	return p, nil
}

// tsigKeys builds the keys of the config, reading each secret_file (on
// every build, so a reload picks up a rotated key).
func tsigKeys(ks []config.TSIGKey) (map[string]*tsigKey, error) {
	out := map[string]*tsigKey{}
	for i, k := range ks {
		alg := config.TSIGAlgorithms[k.Algorithm]
		if alg == "" {
			alg = dns.HmacSHA256
		}
		secret := k.Secret
		if k.SecretFile != "" {
			var err error
			if secret, err = config.ReadSecretFile(k.SecretFile); err != nil {
				return nil, fmt.Errorf("tsig_keys[%d].secret_file: %w", i, err)
			}
			if err := config.CheckTSIGSecret(secret); err != nil {
				return nil, fmt.Errorf("tsig_keys[%d].secret_file %s: the key %w", i, k.SecretFile, err)
			}
		}
		name := strings.ToLower(dns.Fqdn(k.Name))
		out[name] = &tsigKey{name: name, alg: alg, secret: secret}
	}
	return out, nil
}

func (p *xfrPolicy) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, pre := range p.allow {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// errNotOffered sends a transfer request down the ordinary path, which
// refuses it like any other answer (AA, OPT echoed).
var errNotOffered = errors.New("transfer not offered")

// transferZone returns the zone called name if it offers transfers to
// client, else nil.
func (s *Server) transferZone(name string, client netip.Addr) *zone {
	t := s.tab.Load()
	if t == nil {
		return nil
	}
	z := t.zoneByName[strings.ToLower(name)]
	if z == nil || z.xfr == nil || !z.xfr.allowed(client) {
		return nil
	}
	return z
}

// isTransfer reports whether a TCP message asks for AXFR; those are
// answered by transfer, as a stream of messages.
func isTransfer(w *worker, msg []byte) bool {
	q := &w.q
	return q.parseHeader(msg) == nil && q.flags&0x8000 == 0 && (q.flags>>11)&0xF == 0 &&
		q.qdcnt == 1 && q.parseQuestion(msg) == nil && q.qtype == typeAXFR
}

// transfer answers an AXFR over TCP: REFUSED unless the zone offers
// transfers to this client, NOTAUTH unless signed with the zone's key,
// else the zone's static records from SOA to SOA, each message signed
// when the request was.
func (s *Server) transfer(out io.Writer, msg []byte, client netip.Addr) error {
	req := new(dns.Msg)
	if err := req.Unpack(msg); err != nil || len(req.Question) != 1 {
		return errNotOffered
	}
	fail := func(rcode int) error {
		m := new(dns.Msg)
		m.SetRcode(req, rcode)
		_, err := s.writeMsg(out, m, nil, "", false)
		return err
	}
	z := s.transferZone(req.Question[0].Name, client)
	if z == nil {
		return errNotOffered
	}
	key := z.xfr.key
	var reqMAC string
	if key != nil {
		ts := req.IsTsig()
		if ts == nil || strings.ToLower(ts.Hdr.Name) != key.name || strings.ToLower(ts.Algorithm) != key.alg {
			z.stats.add(0, typeAXFR, dns.RcodeNotAuth)
			return fail(dns.RcodeNotAuth)
		}
		if err := dns.TsigVerify(msg, key.secret, "", false); err != nil {
			z.stats.add(0, typeAXFR, dns.RcodeNotAuth)
			return fail(dns.RcodeNotAuth)
		}
		reqMAC = ts.MAC
	}
	rrs := z.records
	for i := 0; i < len(rrs); i += xfrChunk {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Answer = rrs[i:min(i+xfrChunk, len(rrs))]
		if key != nil {
			// Every message is signed; each MAC covers the previous one,
			// and the messages after the first sign the timers only
			// (RFC 8945 §5.3.1).
			m.SetTsig(key.name, key.alg, 300, time.Now().Unix())
		}
		mac, err := s.writeMsg(out, m, key, reqMAC, i > 0)
		if err != nil {
			return err
		}
		reqMAC = mac
	}
	z.stats.add(0, typeAXFR, rcodeNoError)
	return nil
}

// writeMsg packs (and signs, with key) one message and writes it with its
// TCP length prefix. It returns the message's MAC when signed.
func (s *Server) writeMsg(out io.Writer, m *dns.Msg, key *tsigKey, reqMAC string, timersOnly bool) (string, error) {
	var b []byte
	var mac string
	var err error
	if key != nil {
		b, mac, err = dns.TsigGenerate(m, key.secret, reqMAC, timersOnly)
	} else {
		b, err = m.Pack()
	}
	if err != nil {
		return "", fmt.Errorf("packing a transfer message: %w", err)
	}
	buf := make([]byte, 2, 2+len(b))
	binary.BigEndian.PutUint16(buf, uint16(len(b)))
	_, err = out.Write(append(buf, b...))
	return mac, err
}
