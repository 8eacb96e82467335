package xdp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Mode is how a service's packets reach its real servers.
type Mode uint32

const (
	// DR rewrites the destination MAC to the real's on the same L2
	// segment (LVS direct routing); the real holds the VIP on lo.
	DR Mode = 1
	// Tunnel encapsulates the packet IP-in-IP to the real (LVS TUN,
	// Katran), which decapsulates it.
	Tunnel Mode = 2
)

func (m Mode) String() string {
	switch m {
	case DR:
		return "dr"
	case Tunnel:
		return "tunnel"
	}
	return fmt.Sprintf("mode(%d)", uint32(m))
}

// Limits of the kernel maps, as lb.c declares them.
const (
	MaxServices = 512
	MaxReals    = 4096
	// RingSize is M, the size of every service's Maglev table.
	RingSize = 65537
)

// Options configure a Dataplane.
type Options struct {
	Logger *slog.Logger
	// Resolver finds the MAC of a real's next hop; the kernel's
	// neighbour table (NeighResolver) when nil.
	Resolver Resolver
	// Source4 and Source6 are the outer source addresses of tunnelled
	// packets; when invalid, the first address of the device the
	// program is attached to is used.
	Source4, Source6 netip.Addr
}

// Dataplane is the loaded XDP program and its maps, attached to zero or
// more devices. Its methods are safe for concurrent use.
type Dataplane struct {
	log  *slog.Logger
	res  Resolver
	opts Options

	mu       sync.Mutex
	objs     lbObjects
	ringSpec *ebpf.MapSpec
	links    map[string]link.Link
	services map[ServiceKey]*service
	svcIDs   idPool
	realIDs  idPool
	gen      uint32
	closed   bool
}

// New loads the program and its maps into the kernel. Nothing is
// attached yet: Attach does that.
func New(opts Options) (*Dataplane, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Resolver == nil {
		opts.Resolver = NeighResolver{}
	}
	spec, err := loadLb()
	if err != nil {
		return nil, fmt.Errorf("xdp: loading the program's spec: %w", err)
	}
	d := &Dataplane{
		log:      opts.Logger.With("dataplane", "xdp"),
		res:      opts.Resolver,
		opts:     opts,
		ringSpec: spec.Maps[lbMapRings].InnerMap.Copy(),
		links:    map[string]link.Link{},
		services: map[ServiceKey]*service{},
		svcIDs:   idPool{max: MaxServices},
		// Real 0 is never handed out, so a zeroed table slot can never
		// name a live real.
		realIDs: idPool{max: MaxReals, next: 1},
	}
	if err := spec.LoadAndAssign(&d.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("xdp: the kernel refused the program: %+v", ve)
		}
		return nil, fmt.Errorf("xdp: loading the program: %w", err)
	}
	return d, nil
}

// Close detaches the program from every device and frees the maps.
// Packets to the VIPs go to the stack again from then on.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for dev, l := range d.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("xdp: detaching from %s: %w", dev, err))
		}
		delete(d.links, dev)
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}

// idPool hands out small integer ids below max, reusing freed ones.
type idPool struct {
	max, next uint32
	free      []uint32
}

func (p *idPool) get() (uint32, bool) {
	if n := len(p.free); n > 0 {
		id := p.free[n-1]
		p.free = p.free[:n-1]
		return id, true
	}
	if p.next >= p.max {
		return 0, false
	}
	p.next++
	return p.next - 1, true
}

func (p *idPool) put(id uint32) { p.free = append(p.free, id) }
