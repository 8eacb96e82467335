package xdp

import (
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf/link"
)

// Decap is "strata decap": decap.c attached to a real server's devices,
// where it strips the outer header of the IP-in-IP packets a balancer in
// tunnel mode sends, for kernels without the ipip module. The inner
// packet, addressed to the VIP the real holds on lo, goes on to the stack;
// the reply leaves with the VIP as its source, straight to the client.
type Decap struct {
	objs  decapObjects
	links map[string]link.Link
}

// NewDecap loads the program; Attach puts it on devices.
func NewDecap() (*Decap, error) {
	d := &Decap{links: map[string]link.Link{}}
	if err := loadDecapObjects(&d.objs, nil); err != nil {
		return nil, fmt.Errorf("decap: loading the program: %w", err)
	}
	return d, nil
}

// Attach attaches the program to dev (in the calling thread's network
// namespace) in mode, and returns the hook it got.
func (d *Decap) Attach(dev string, mode AttachMode) (AttachMode, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return "", fmt.Errorf("decap: device %s: %w", dev, err)
	}
	l, got, err := attachXDP("decap", d.objs.XdpDecap, ifi, mode, func(error) {})
	if err != nil {
		return "", err
	}
	d.links[dev] = l
	return got, nil
}

// Stats returns how many packets the program decapsulated and how many
// it passed on untouched, over every CPU.
func (d *Decap) Stats() (decapsulated, passed uint64) {
	decapsulated, _ = sumPerCPU(d.objs.DecapStats, 0)
	passed, _ = sumPerCPU(d.objs.DecapStats, 1)
	return decapsulated, passed
}

// Close detaches the program from every device and frees it.
func (d *Decap) Close() error {
	var errs []error
	for dev, l := range d.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("decap: detaching from %s: %w", dev, err))
		}
		delete(d.links, dev)
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}
