package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/supervisor"
)

func init() {
	addCommand(command{"l7", "--listen ADDR --to URL [--to URL …] [--lb NAME] [--health-path PATH]", "run an HTTP load balancer without a config file", cmdL7})
}

// cmdL7 is the HTTP one-liner: it writes the config the flags describe and
// runs it as `strata run` would (-print shows that config).
func cmdL7(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("l7", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen `address`")
	var to multiFlag
	fs.Var(&to, "to", "backend `URL` (http://host:port, or h2c://host:port for cleartext HTTP/2); repeat for each backend")
	lb := fs.String("lb", config.DefaultLB, "load-balancing algorithm: wrr, rr, lc, p2c, sh, maglev …")
	healthPath := fs.String("health-path", "", "check every backend with GET `PATH` every 2s (none when empty)")
	accessLog := fs.Bool("access-log", false, "write an access log (combined format) to stderr")
	admin := addAdminFlags(fs, config.DefaultAdminListen, "admin listener `address`, or off")
	print := fs.Bool("print", false, "print the config the flags make and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *listen == "" || len(to) == 0 {
		fmt.Fprintln(stderr, "strata l7: --listen and at least one --to are required")
		fs.Usage()
		return 2
	}
	protocol := ""
	var addrs []string
	for _, t := range to {
		if !strings.Contains(t, "://") {
			t = "http://" + t
		}
		u, err := url.Parse(t)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
			fmt.Fprintf(stderr, "strata l7: --to %q: want http://host:port\n", t)
			return 2
		}
		p := map[string]string{"http": "http1", "h2c": "h2c", "https": "h2"}[u.Scheme]
		if p == "" || (protocol != "" && p != protocol) {
			fmt.Fprintf(stderr, "strata l7: --to %q: the scheme must be http, h2c or https, the same for every backend\n", t)
			return 2
		}
		protocol = p
		host := u.Host
		if u.Port() == "" {
			host += map[string]string{"http1": ":80", "h2c": ":80", "h2": ":443"}[p]
		}
		addrs = append(addrs, host)
	}
	var b strings.Builder
	b.WriteString(admin.section())
	fmt.Fprintf(&b, "pools:\n  - name: l7\n    lb: %s\n    protocol: %s\n    backends:\n", strconv.Quote(*lb), protocol)
	for _, a := range addrs {
		fmt.Fprintf(&b, "      - address: %s\n", strconv.Quote(a))
	}
	if *healthPath != "" {
		fmt.Fprintf(&b, "    health:\n      type: http\n      path: %s\n      interval: 2s\n      timeout: 1s\n", strconv.Quote(*healthPath))
	}
	fmt.Fprintf(&b, "l7:\n  listeners:\n    - listen: %s\n", strconv.Quote(*listen))
	if *accessLog {
		b.WriteString("      access_log: {path: stderr, format: combined}\n")
	}
	b.WriteString("      routes:\n        - pool: l7\n")
	if *print {
		io.WriteString(stdout, b.String())
		return 0
	}
	if _, err := config.Parse("strata l7", []byte(b.String())); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := newLogger(config.Log{Level: "info", Format: "text"}, stderr)
	sup := supervisor.New(supervisor.Options{
		Source:  supervisor.Source{Name: "strata l7", Data: []byte(b.String())},
		Logger:  log,
		Version: version,
	})
	return serve(sup, log)
}
