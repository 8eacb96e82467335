package main

import (
	"bytes"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"text/template"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/supervisor"
)

//go:embed demo.yaml
var demoTemplate string

// demoApp is one of the demo's application instances: a real HTTP server
// on loopback that says who it is, so a newcomer sees the balancing.
type demoApp struct {
	Name, Zone, Addr string
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the demo's HTTP load balancer")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "address of the admin listener")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	apps := []*demoApp{{Name: "app-1", Zone: "a"}, {Name: "app-2", Zone: "a"}, {Name: "app-3", Zone: "b"}}
	for _, a := range apps {
		if err := a.start(); err != nil {
			fmt.Fprintf(stderr, "demo: starting %s: %v\n", a.Name, err)
			return 1
		}
	}
	var buf bytes.Buffer
	tmpl := template.Must(template.New("demo").Parse(demoTemplate))
	if err := tmpl.Execute(&buf, map[string]any{"Listen": *listen, "Admin": *adminAddr, "Apps": apps}); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	log := newLogger(config.Log{Level: "info", Format: "text"}, stderr)
	sup := supervisor.New(supervisor.Options{
		Source:  supervisor.Source{Name: "demo.yaml", Data: buf.Bytes()},
		Logger:  log,
		Version: version,
	})
	fmt.Fprintf(stdout, `strata demo: an HTTP load balancer on %[1]s in front of %[3]d app instances on loopback.

Try:
  curl -s http://%[1]s/                      # answered by app-1, app-2 and app-3 in turn (weights 2:1:1)
  curl -s http://%[2]s/api/v1/status         # pools, backends, health and counters as JSON
  curl -s http://%[2]s/metrics | grep strata_backend
  curl -s -X POST http://%[2]s/api/v1/pools/app/backends/app-1/drain   # app-1 takes no new requests
  curl -s -X POST http://%[2]s/api/v1/pools/app/backends/app-1/undrain

Press Ctrl-C to stop.
`, *listen, *adminAddr, len(apps))
	return serve(sup, log)
}

func (a *demoApp) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	a.Addr = ln.Addr().String()
	body := fmt.Sprintf("hello from %s (zone %s)\n", a.Name, a.Zone)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Instance", a.Name)
		io.WriteString(w, body)
	})
	go http.Serve(ln, mux) //nolint:errcheck // lives as long as the process
	return nil
}
