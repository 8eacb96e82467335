package dnslb

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/strata-lb/strata/internal/config"
)

// viewSet maps client addresses to views, the longest matching prefix
// first, so a /24 inside a /8 of another view wins.
type viewSet struct {
	names    []string
	prefixes []viewPrefix
}

type viewPrefix struct {
	p    netip.Prefix
	view int
}

func newViewSet(vs []config.DNSView) (*viewSet, error) {
	s := &viewSet{}
	for i, v := range vs {
		s.names = append(s.names, v.Name)
		for _, sub := range v.Subnets {
			p, err := netip.ParsePrefix(sub)
			if err != nil {
				return nil, fmt.Errorf("view %s: %w", v.Name, err)
			}
			s.prefixes = append(s.prefixes, viewPrefix{p.Masked(), i})
		}
	}
	sort.SliceStable(s.prefixes, func(i, j int) bool { return s.prefixes[i].p.Bits() > s.prefixes[j].p.Bits() })
	return s, nil
}

// index returns the index of the view called name, or -1.
func (s *viewSet) index(name string) int {
	for i, n := range s.names {
		if n == name {
			return i
		}
	}
	return -1
}

// match returns the view of addr and the length of the prefix that
// matched, or -1 and 0.
func (s *viewSet) match(addr netip.Addr) (view, bits int) {
	addr = addr.Unmap()
	for _, vp := range s.prefixes {
		if vp.p.Contains(addr) {
			return vp.view, vp.p.Bits()
		}
	}
	return -1, 0
}
