package dnslb

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/discovery"
	"github.com/strata-lb/strata/internal/regapi"
)

// ServiceSource is what the DNS interface of the registry reads: the
// registry's Resolver (instances with the protection threshold applied,
// and a channel closed at the next change) and the list of a namespace's
// services, so every name can be answered from tables built in advance.
type ServiceSource = regapi.Source

// Bounds of one registry answer. A UDP answer larger than the client's
// buffer is truncated and retried over TCP, whose messages hold 64 KiB.
const (
	// maxSvcAddrs bounds the A or AAAA records of one answer (16 or 28
	// bytes each); a service with more addresses answers a rotating
	// window of them.
	maxSvcAddrs = 1000
	// maxSvcSRV bounds the SRV records of one answer, each about 80 bytes
	// with its glue.
	maxSvcSRV = 500
	// svcRebuildGap spaces rebuilds, so a burst of registrations costs
	// one rebuild, not one per registration.
	svcRebuildGap = 20 * time.Millisecond
	// svcSourcePoll is how often the view asks for its source while there
	// is none (the registry role starts after the dns role) and checks
	// that the one it reads is still current.
	svcSourcePoll = 100 * time.Millisecond
)

// svcView is one table's view of the registry: the answers of every name
// under svc.<domain>, rebuilt by a goroutine when the registry changes and
// swapped whole, so a query reads them with one atomic load and one map
// lookup.
type svcView struct {
	domain     string // lower-case fqdn
	tail       []byte // wire name of svc.<domain>
	ttl        uint32
	count      int
	namespaces []string
	zone       *zone
	log        *slog.Logger

	set  atomic.Pointer[svcSet]
	stop chan struct{}
	done chan struct{}
}

// svcSet is the answers built from one state of the registry.
type svcSet struct {
	names map[string]*svcEntry // lower-case wire name → entry
	// byKey remembers what each service produced, so a rebuild repacks
	// only the services whose index moved.
	byKey map[regapi.Key]*svcBuilt
}

// svcBuilt is what one service contributed to a set.
type svcBuilt struct {
	index     uint64
	protected bool
	wire      string
	entry     *svcEntry
	targets   []svcNamed // the SRV targets' address entries
}

type svcNamed struct {
	wire  string
	entry *svcEntry
}

// svcEntry is one existing name: a service, an SRV target or an empty
// non-terminal (no records at all: NODATA for every type).
type svcEntry struct {
	v4, v6 addrRecords
	srv    *answer
}

// entEntry is every empty non-terminal.
var entEntry = &svcEntry{}

// addrRecords are the packed A or AAAA records of a name, each owned by
// a pointer to the question, and their weights for choosing count of them.
type addrRecords struct {
	recs    []byte
	size    int
	weights []int
}

func newSvcView(rc *config.DNSRegistry, z *zone) *svcView {
	dom := strings.ToLower(dns.Fqdn(rc.Domain))
	ns := make([]string, len(rc.Namespaces))
	copy(ns, rc.Namespaces)
	v := &svcView{domain: dom, tail: wireName("svc." + dom), ttl: uint32(rc.TTL.D().Seconds()),
		count: rc.Count, namespaces: ns, zone: z, log: slog.Default()}
	v.set.Store(&svcSet{names: map[string]*svcEntry{}})
	return v
}

// lookup returns the entry of a lower-case wire name, or nil.
func (v *svcView) lookup(name []byte) *svcEntry {
	return v.set.Load().names[string(name)]
}

// start follows the registry that get returns until stopSync. get is
// called again and again: the registry role may start after this one, or
// stop, and a reload may replace it.
func (v *svcView) start(get func() ServiceSource) {
	v.stop, v.done = make(chan struct{}), make(chan struct{})
	go v.run(get)
}

// stopSync stops the goroutine and waits for it.
func (v *svcView) stopSync() {
	if v.stop == nil {
		return
	}
	close(v.stop)
	<-v.done
	v.stop = nil
}

func (v *svcView) run(get func() ServiceSource) {
	defer close(v.done)
	poll := time.NewTicker(svcSourcePoll)
	defer poll.Stop()
	var src ServiceSource
	for {
		cur := get()
		if cur == nil {
			if src != nil {
				// The registry went away: its names go with it.
				v.set.Store(&svcSet{names: map[string]*svcEntry{}})
				src = nil
			}
			select {
			case <-v.stop:
				return
			case <-poll.C:
			}
			continue
		}
		src = cur
		// Take the channel before reading, so a change made while the set
		// is built is not missed.
		changed := src.Changed()
		v.rebuild(src)
	wait:
		for {
			select {
			case <-v.stop:
				return
			case <-changed:
				break wait
			case <-poll.C:
				if get() != src {
					break wait
				}
			}
		}
		select {
		case <-v.stop:
			return
		case <-time.After(svcRebuildGap):
		}
	}
}

// rebuild reads every service of the view's namespaces and swaps in the
// answers.
func (v *svcView) rebuild(src ServiceSource) {
	prev := v.set.Load()
	next := &svcSet{names: make(map[string]*svcEntry, len(prev.names)), byKey: make(map[regapi.Key]*svcBuilt, len(prev.byKey))}
	var built []*svcBuilt
	for _, ns := range v.namespaces {
		for _, k := range src.Services(ns) {
			res, found := src.Resolve(k.Namespace, k.Group, k.Service)
			if !found {
				continue // deleted since it was listed
			}
			b := prev.byKey[k]
			if b == nil || b.index != res.Index || b.protected != res.Protected {
				if b = v.buildService(k, &res); b == nil {
					continue
				}
			}
			next.byKey[k] = b
			built = append(built, b)
		}
	}
	// Services first, so a service's name wins over a target or an empty
	// non-terminal that happens to spell the same; then targets; then the
	// ancestors of every name up to svc.<domain>.
	for _, b := range built {
		if next.names[b.wire] == nil {
			next.names[b.wire] = b.entry
		}
	}
	for _, b := range built {
		for _, t := range b.targets {
			if next.names[t.wire] == nil {
				next.names[t.wire] = t.entry
			}
		}
	}
	for _, b := range built {
		for w := parentWire([]byte(b.wire)); len(w) > len(v.tail); w = parentWire(w) {
			if next.names[string(w)] != nil {
				break
			}
			next.names[string(w)] = entEntry
		}
	}
	v.set.Store(next)
}

// buildService packs the answers of one service, or returns nil when its
// name cannot be written in DNS.
func (v *svcView) buildService(k regapi.Key, res *regapi.Result) *svcBuilt {
	wire, ok := svcWireName(k, v.tail)
	if !ok {
		v.log.Debug("registry service has no DNS name", "service", k.String())
		return nil
	}
	b := &svcBuilt{index: res.Index, protected: res.Protected, wire: string(wire), entry: &svcEntry{}}
	// The question is this name, so the answer starts at a known offset
	// and glue can point at the SRV targets.
	qend := headerLen + len(wire) + 4
	type srvKey struct {
		ip   netip.Addr
		port int
	}
	byIP := map[netip.Addr]int{} // index in v4 or v6 weights
	seenSRV := map[srvKey]bool{}
	var srv, glue []byte
	nsrv, nglue := 0, 0
	targets := map[netip.Addr]bool{}
	for i := range res.Instances {
		in := &res.Instances[i]
		// Resolve returned the usable instances, or every enabled one
		// when the protection threshold stepped in; a weight of 0 still
		// means no new traffic.
		w := weightOf(in.Weight)
		if !in.Enabled || w == 0 {
			continue
		}
		ip, err := netip.ParseAddr(in.IP)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		ar := &b.entry.v4
		if ip.Is6() {
			ar = &b.entry.v6
		}
		if j, ok := byIP[ip]; ok {
			ar.weights[j] += w
		} else {
			byIP[ip] = len(ar.weights)
			ar.weights = append(ar.weights, w)
			ar.recs = appendAddrRR(ar.recs, []byte{0xC0, headerLen}, ip, v.ttl)
			ar.size = len(ar.recs) / len(ar.weights)
		}
		sk := srvKey{ip, in.Port}
		if seenSRV[sk] || nsrv >= maxSvcSRV {
			continue
		}
		target := srvTargetWire(ip, wire)
		if len(target) > maxNameLen {
			continue
		}
		seenSRV[sk] = true
		tgtOff := qend + len(srv) + srvFixedLen
		wt := min(w, 65535)
		rdlen := 6 + len(target)
		srv = append(srv, 0xC0, headerLen, 0, typeSRV, 0, classIN,
			byte(v.ttl>>24), byte(v.ttl>>16), byte(v.ttl>>8), byte(v.ttl), byte(rdlen>>8), byte(rdlen),
			0, 0, byte(wt>>8), byte(wt), byte(in.Port>>8), byte(in.Port))
		srv = append(srv, target...)
		nsrv++
		if !targets[ip] {
			targets[ip] = true
			b.targets = append(b.targets, svcNamed{string(target), addrEntry(ip, v.ttl)})
			// Glue: the target's address, its owner a pointer to the
			// target inside the SRV record when the offset fits one.
			owner := target
			if tgtOff <= 0x3FFF {
				owner = []byte{0xC0 | byte(tgtOff>>8), byte(tgtOff)}
			}
			glue = appendAddrRR(glue, owner, ip, v.ttl)
			nglue++
		}
	}
	if nsrv > 0 {
		b.entry.srv = &answer{an: uint16(nsrv), ar: uint16(nglue), body: append(srv, glue...)}
	}
	return b
}

// addrEntry is an SRV target's entry: its one address.
func addrEntry(ip netip.Addr, ttl uint32) *svcEntry {
	e := &svcEntry{}
	ar := &e.v4
	if ip.Is6() {
		ar = &e.v6
	}
	ar.recs = appendAddrRR(nil, []byte{0xC0, headerLen}, ip, ttl)
	ar.size, ar.weights = len(ar.recs), []int{1}
	return e
}

// appendAddrRR appends an A or AAAA record owned by owner (a wire name or
// a compression pointer).
func appendAddrRR(b, owner []byte, ip netip.Addr, ttl uint32) []byte {
	b = append(b, owner...)
	if ip.Is4() {
		a := ip.As4()
		return append(b, 0, typeA, 0, classIN, byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 4, a[0], a[1], a[2], a[3])
	}
	a := ip.As16()
	b = append(b, 0, typeAAAA, 0, classIN, byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 16)
	return append(b, a[:]...)
}

// weightOf turns a registry weight (a float, Nacos style, 0 to 10000) into
// an integer weight keeping two decimals, as the registry's SDK does.
func weightOf(w float64) int {
	if !(w > 0) {
		return 0
	}
	return max(1, int(math.Round(min(w, 1e6)*100)))
}

// write appends count of the records chosen by weight, or all of them
// (at most maxSvcAddrs) rotated when count is 0, and returns how many.
func (a *addrRecords) write(w *worker, r *response, count int) int {
	n := len(a.weights)
	if n == 0 {
		return 0
	}
	sz := a.size
	if count == 0 || count >= n {
		start := int(w.rand() % uint64(n))
		k := min(n, maxSvcAddrs)
		if k == n {
			r.buf = append(r.buf, a.recs[start*sz:]...)
			r.buf = append(r.buf, a.recs[:start*sz]...)
		} else {
			for i := 0; i < k; i++ {
				j := (start + i) % n
				r.buf = append(r.buf, a.recs[j*sz:(j+1)*sz]...)
			}
		}
		r.add(uint16(k), 0, 0)
		return k
	}
	// Weighted sampling without replacement, as balanced names do.
	w.idx = w.idx[:0]
	total := 0
	for i, wt := range a.weights {
		w.idx = append(w.idx, i)
		total += wt
	}
	k := 0
	for ; k < count && len(w.idx) > 0; k++ {
		j := 0
		if total <= 0 {
			j = int(w.rand() % uint64(len(w.idx)))
		} else {
			x := int(w.rand() % uint64(total))
			for ; j < len(w.idx)-1; j++ {
				x -= a.weights[w.idx[j]]
				if x < 0 {
					break
				}
			}
		}
		i := w.idx[j]
		r.buf = append(r.buf, a.recs[i*sz:(i+1)*sz]...)
		total -= a.weights[i]
		w.idx[j] = w.idx[len(w.idx)-1]
		w.idx = w.idx[:len(w.idx)-1]
	}
	r.add(uint16(k), 0, 0)
	return k
}

// answer writes the reply for a name under svc.<domain> that exists.
func (v *svcView) answer(t *table, w *worker, req []byte, e *svcEntry) (int, *zone, int) {
	q, r := &w.q, &w.r
	z := v.zone
	r.start(req, q, rcodeNoError, true)
	n := 0
	switch q.qtype {
	case typeAXFR, typeIXFR:
		r.start(req, q, rcodeRefused, true)
		return rcodeRefused, z, 0
	case typeA:
		n = e.v4.write(w, r, v.count)
	case typeAAAA:
		n = e.v6.write(w, r, v.count)
	case typeSRV:
		if e.srv != nil {
			r.body(e.srv)
			n = int(e.srv.an)
		}
	case typeANY:
		if e != entEntry {
			r.body(t.hinfo)
			n = 1
		}
	}
	if n == 0 {
		r.authority(z)
	}
	return rcodeNoError, z, 0
}

// svcWireName returns the lower-case wire name of a service under tail
// (the wire name of svc.<domain>): the service name's dot-separated parts
// as labels, then the group and the namespace as one label each. It fails
// when a label would be empty or longer than 63 bytes, or the name longer
// than 255.
func svcWireName(k regapi.Key, tail []byte) ([]byte, bool) {
	out := make([]byte, 0, len(k.Service)+len(k.Group)+len(k.Namespace)+len(tail)+8)
	add := func(l string) bool {
		if len(l) == 0 || len(l) > 63 {
			return false
		}
		out = append(out, byte(len(l)))
		for i := 0; i < len(l); i++ {
			c := l[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A' // as queries are folded: ASCII only
			}
			out = append(out, c)
		}
		return true
	}
	rest := k.Service
	for {
		part, after, more := strings.Cut(rest, ".")
		if !add(part) {
			return nil, false
		}
		if !more {
			break
		}
		rest = after
	}
	if !add(k.Group) || !add(k.Namespace) {
		return nil, false
	}
	out = append(out, tail...)
	if len(out) > maxNameLen {
		return nil, false
	}
	return out, true
}

// parseSvcName is svcWireName's inverse: it splits a wire name under
// tail (lower case) into namespace, group and service (its labels before
// the group joined by dots), folding ASCII case as queries are. It fails
// for names that svcWireName cannot produce: outside tail, fewer than
// three labels, or a service label holding a dot.
func parseSvcName(name, tail []byte) (regapi.Key, bool) {
	name = asciiLower(name)
	if len(name) < len(tail) || string(name[len(name)-len(tail):]) != string(tail) {
		return regapi.Key{}, false
	}
	var labels []string
	for off := 0; off < len(name)-len(tail); {
		l := int(name[off])
		if l == 0 || l > 63 || off+1+l > len(name)-len(tail) {
			return regapi.Key{}, false
		}
		labels = append(labels, string(name[off+1:off+1+l]))
		off += 1 + l
	}
	if len(labels) < 3 {
		return regapi.Key{}, false
	}
	svc := labels[:len(labels)-2]
	for _, l := range svc {
		if strings.Contains(l, ".") {
			return regapi.Key{}, false
		}
	}
	return regapi.Key{Namespace: labels[len(labels)-1], Group: labels[len(labels)-2], Service: strings.Join(svc, ".")}, true
}

// asciiLower returns a copy of b with ASCII letters in lower case.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// srvTargetWire is the wire name an SRV answer gives an address below the
// service's name: ip-192-0-2-1.<name> or ip6-<32 hex digits>.<name>, as
// balanced names do.
func srvTargetWire(ip netip.Addr, name []byte) []byte {
	var l string
	if ip.Is4() {
		l = "ip-" + strings.ReplaceAll(ip.String(), ".", "-")
	} else {
		l = fmt.Sprintf("ip6-%x", ip.As16())
	}
	out := make([]byte, 0, 1+len(l)+len(name))
	out = append(out, byte(len(l)))
	out = append(out, l...)
	return append(out, name...)
}

// registryZone returns the zone to synthesise for dns.registry's domain
// when no configured zone holds it (nil otherwise): an SOA whose minimum
// is the answers' TTL, so a service registered a moment after a miss is
// found soon, and an NS whose name answers with the listen addresses that
// are specific IPs.
func registryZone(rc *config.DNSRegistry, zcs []*config.Zone, listen []string) *config.Zone {
	dom := strings.ToLower(dns.Fqdn(rc.Domain))
	for _, zc := range zcs {
		if dns.IsSubDomain(strings.ToLower(dns.Fqdn(zc.Name)), dom) {
			return nil
		}
	}
	neg := uint32(rc.TTL.D().Seconds())
	recs := []string{
		fmt.Sprintf("@ 3600 SOA ns hostmaster 1 %d %d %d %d", defaultSOARefresh, defaultSOARetry, defaultSOAExpire, neg),
		"@ 3600 NS ns",
	}
	seen := map[netip.Addr]bool{}
	for _, l := range listen {
		ap, err := netip.ParseAddrPort(l)
		if err != nil || ap.Addr().IsUnspecified() || ap.Addr().Zone() != "" || seen[ap.Addr().Unmap()] {
			continue
		}
		ip := ap.Addr().Unmap()
		seen[ip] = true
		typ := "A"
		if ip.Is6() {
			typ = "AAAA"
		}
		recs = append(recs, fmt.Sprintf("ns 3600 %s %s", typ, ip))
	}
	return &config.Zone{Name: dom, TTL: config.Duration(time.Hour), Records: recs}
}

// serviceSource returns how the view of rc finds its registry: the
// registry of this process (Options.Services) or, when rc lists servers, a
// remote source, kept across reloads that leave servers, token and
// namespaces alone. A new remote source is not started yet.
func (s *Server) serviceSource(rc *config.DNSRegistry) (func() ServiceSource, *discovery.Namespaces, error) {
	if rc == nil {
		return nil, nil, nil
	}
	if len(rc.Servers) == 0 {
		if get := s.opts.Services; get != nil {
			return get, nil, nil
		}
		return func() ServiceSource { return nil }, nil, nil
	}
	// A token file is read on every reload, so that a rotated token
	// makes a new source.
	token := rc.Token
	if rc.TokenFile != "" {
		var err error
		if token, err = config.ReadSecretFile(rc.TokenFile); err != nil {
			return nil, nil, fmt.Errorf("dns: registry.token_file: %w", err)
		}
	}
	r := s.remote
	if r == nil || !r.Same(rc.Servers, token, rc.Namespaces) {
		var err error
		if r, err = discovery.NewNamespaces(rc.Servers, token, rc.Namespaces, s.log); err != nil {
			return nil, nil, fmt.Errorf("dns: registry: %w", err)
		}
	}
	return func() ServiceSource { return r }, r, nil
}

// swapSvc stops the running registry view and starts v (nil: none).
// Callers hold s.mu.
func (s *Server) swapSvc(v *svcView, get func() ServiceSource) {
	if s.svc != nil && s.svc != v {
		s.svc.stopSync()
	}
	s.svc = v
	if v != nil && v.stop == nil {
		v.start(get)
	}
}

// swapRemote makes r the remote source in use, closing the one it
// replaces. Callers hold s.mu.
func (s *Server) swapRemote(r *discovery.Namespaces) {
	if s.remote != nil && s.remote != r {
		s.remote.Close()
	}
	s.remote = r
	if r != nil {
		r.Start()
	}
}
