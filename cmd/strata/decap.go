package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/strata-lb/strata/internal/l4/xdp"
)

func init() {
	addCommand(command{"decap", "--dev IFACE [--dev IFACE …] [--xdp-mode auto|native|generic]", "decapsulate a tunnel-mode balancer's IP-in-IP packets on a real server (XDP; no ipip module needed)", cmdDecap})
}

// cmdDecap runs on a real server behind a forward: tunnel service: it
// attaches the decapsulating XDP program to the devices the tunnelled
// packets arrive on and keeps it there until SIGINT or SIGTERM, when it
// detaches it and prints its counters.
func cmdDecap(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("decap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var devs multiFlag
	fs.Var(&devs, "dev", "`interface` the tunnelled packets arrive on; repeat for each")
	mode := fs.String("xdp-mode", "auto", "XDP hook: auto, native or generic")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(devs) == 0 {
		fmt.Fprintln(stderr, "strata decap: at least one --dev is required")
		fs.Usage()
		return 2
	}
	d, err := xdp.NewDecap()
	if err != nil {
		fmt.Fprintln(stderr, "strata decap:", err)
		return 1
	}
	defer d.Close()
	for _, dev := range devs {
		got, err := d.Attach(dev, xdp.AttachMode(*mode))
		if err != nil {
			fmt.Fprintln(stderr, "strata decap:", err)
			return 1
		}
		fmt.Fprintf(stderr, "strata decap: %s XDP on %s\n", got, dev)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	n, passed := d.Stats()
	fmt.Fprintf(stdout, "decapsulated %d packets, passed %d\n", n, passed)
	return 0
}
