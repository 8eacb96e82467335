package xdp

import (
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// AttachMode says which XDP hook to use.
type AttachMode string

const (
	// Auto tries the driver's native hook and falls back to generic.
	Auto AttachMode = "auto"
	// Native runs in the driver, before any socket buffer exists.
	Native AttachMode = "native"
	// Generic runs in the stack's receive path; every driver has it.
	Generic AttachMode = "generic"
)

// Attach attaches the program to the device dev (in the calling thread's
// network namespace) and returns the hook it got. Attaching to a device
// that already has it is a no-op.
func (d *Dataplane) Attach(dev string, mode AttachMode) (AttachMode, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return "", errors.New("xdp: dataplane closed")
	}
	if _, ok := d.links[dev]; ok {
		return mode, nil
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return "", fmt.Errorf("xdp: device %s: %w", dev, err)
	}
	l, got, err := attachXDP("xdp", d.objs.XdpLb, ifi, mode, func(err error) {
		d.log.Info("native XDP not available, attaching generic XDP", "dev", dev, "err", err)
	})
	if err != nil {
		return "", err
	}
	if err := d.setSources(ifi); err != nil {
		l.Close()
		return "", err
	}
	d.links[dev] = l
	d.log.Info("XDP attached", "dev", dev, "mode", got)
	return got, nil
}

// attachXDP attaches prog to the device ifi in mode, and returns the hook
// it got: Auto tries the driver's hook and, when the driver has none,
// calls fallback with the reason and takes the generic one. The balancer
// and strata decap attach the same way; errors begin with who, theirs.
func attachXDP(who string, prog *ebpf.Program, ifi *net.Interface, mode AttachMode, fallback func(error)) (link.Link, AttachMode, error) {
	try := func(m AttachMode) (link.Link, error) {
		flags := link.XDPGenericMode
		if m == Native {
			flags = link.XDPDriverMode
		}
		return link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index, Flags: flags})
	}
	var (
		l   link.Link
		err error
	)
	got := mode
	switch mode {
	case Native, Generic:
		l, err = try(mode)
	case Auto, "":
		got = Native
		if l, err = try(Native); err != nil {
			fallback(err)
			got = Generic
			l, err = try(Generic)
		}
	default:
		return nil, "", fmt.Errorf("%s: unknown mode %q (auto, native or generic)", who, mode)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: attaching %s XDP to %s: %w", who, got, ifi.Name, err)
	}
	return l, got, nil
}

// Detach removes the program from dev.
func (d *Dataplane) Detach(dev string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.links[dev]
	if !ok {
		return nil
	}
	delete(d.links, dev)
	return l.Close()
}

// Devices lists the devices the program is attached to.
func (d *Dataplane) Devices() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for dev := range d.links {
		out = append(out, dev)
	}
	return out
}

// setSources fills the outer source addresses of tunnel mode from the
// options or, failing them, from the first device attached.
func (d *Dataplane) setSources(ifi *net.Interface) error {
	var cfg lbLbConfig
	if err := d.objs.Config.Lookup(uint32(0), &cfg); err != nil {
		return fmt.Errorf("xdp: reading config: %w", err)
	}
	src4, src6 := d.opts.Source4, d.opts.Source6
	if addrs, err := ifi.Addrs(); err == nil {
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, _ := netipFrom(ipn.IP)
			switch {
			case ip.Is4() && !src4.IsValid() && cfg.Src4 == 0:
				src4 = ip
			case ip.Is6() && !ip.IsLinkLocalUnicast() && !src6.IsValid() && cfg.Src6 == [4]uint32{}:
				src6 = ip
			}
		}
	}
	if src4.IsValid() {
		cfg.Src4 = addrWords(src4)[0]
	}
	if src6.IsValid() {
		cfg.Src6 = addrWords(src6)
	}
	return d.objs.Config.Put(uint32(0), &cfg)
}
