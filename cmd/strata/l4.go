package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/supervisor"
)

func init() {
	addCommand(command{"l4", "--listen ADDR --to ADDR [--to ADDR …] [--udp] [--lb NAME] [--forward dr|tunnel --dev IFACE [--xdp-mode native|generic]]", "run a TCP/UDP load balancer without a config file", cmdL4})
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// cmdL4 is the one-liner: it writes the config the flags describe and
// runs it as `strata run` would, so everything it does is what a config
// file can do (and -print shows that file).
func cmdL4(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("l4", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "", "virtual service `address` (host:port or host:first-last)")
	var to multiFlag
	fs.Var(&to, "to", "backend `address`; repeat for each backend")
	udp := fs.Bool("udp", false, "balance UDP instead of TCP")
	lb := fs.String("lb", "wlc", "scheduler: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos …")
	proxy := fs.String("proxy-protocol", "", "send a PROXY protocol header (v1 or v2) to backends")
	persist := fs.Duration("persistent", 0, "stick clients to a backend for this long (LVS -p); 0 is off")
	forward := fs.String("forward", "proxy", "how packets reach the backends: proxy (user space), dr or tunnel (in the kernel, with XDP)")
	var devs multiFlag
	fs.Var(&devs, "dev", "`interface` the XDP program attaches to (dr and tunnel); repeat for each")
	xdpMode := fs.String("xdp-mode", "auto", "XDP hook: auto, native or generic")
	admin := addAdminFlags(fs, config.DefaultAdminListen, "admin listener `address`, or off")
	print := fs.Bool("print", false, "print the config the flags make and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *listen == "" || len(to) == 0 {
		fmt.Fprintln(stderr, "strata l4: --listen and at least one --to are required")
		fs.Usage()
		return 2
	}
	proto := "tcp"
	if *udp {
		proto = "udp"
	}
	var b strings.Builder
	b.WriteString(admin.section())
	b.WriteString("pools:\n  - name: l4\n    backends:\n")
	for _, a := range to {
		fmt.Fprintf(&b, "      - address: %s\n", strconv.Quote(a))
	}
	if !*udp {
		// A connect check finds a dead backend within a few seconds; UDP
		// has no payload-free check, so UDP relies on passive ejection.
		b.WriteString("    health:\n      type: tcp\n      interval: 2s\n      timeout: 1s\n")
	}
	b.WriteString("l4:\n")
	if len(devs) > 0 {
		fmt.Fprintf(&b, "  xdp:\n    mode: %s\n    devices:\n", strconv.Quote(*xdpMode))
		for _, d := range devs {
			fmt.Fprintf(&b, "      - %s\n", strconv.Quote(d))
		}
	}
	fmt.Fprintf(&b, "  services:\n    - name: %s\n      protocol: %s\n      listen: %s\n      pool: l4\n",
		strconv.Quote(proto+"/"+*listen), proto, strconv.Quote(*listen))
	if *forward == "proxy" || *forward == "" {
		fmt.Fprintf(&b, "      scheduler: %s\n", strconv.Quote(*lb))
	} else {
		// The kernel schedules by Maglev alone.
		fmt.Fprintf(&b, "      forward: %s\n", strconv.Quote(*forward))
	}
	if *proxy != "" {
		fmt.Fprintf(&b, "      proxy_protocol: %s\n", strconv.Quote(*proxy))
	}
	if *persist > 0 {
		fmt.Fprintf(&b, "      persistence:\n        timeout: %s\n", persist.String())
	}
	if *print {
		io.WriteString(stdout, b.String())
		return 0
	}
	if _, err := config.Parse("strata l4", []byte(b.String())); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := newLogger(config.Log{Level: "info", Format: "text"}, stderr)
	sup := supervisor.New(supervisor.Options{
		Source:  supervisor.Source{Name: "strata l4", Data: []byte(b.String())},
		Logger:  log,
		Version: version,
	})
	return serve(sup, log)
}
