// Command strata-l7bench runs internal/l7 with one static pool, for the
// side-by-side benchmark in bench/l7/run.sh. It exists until cmd/strata
// can be driven the same way.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	_ "net/http/pprof" // served only when -pprof is given
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/l7"
	"github.com/strata-lb/strata/internal/upstream"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "proxy listen address")
	backends := flag.String("backends", "", "comma-separated backend host:port list")
	lb := flag.String("lb", "rr", "load-balancing algorithm")
	pprof := flag.String("pprof", "", "serve net/http/pprof on this address")
	baseline := flag.Bool("reverseproxy", false, "run a plain httputil.ReverseProxy instead, as the baseline")
	accessLog := flag.String("access-log", "", "write an access log to this path (combined format; off by default, as in the peers' configs)")
	tlsListen := flag.String("tls-listen", "", "also listen with TLS (and HTTP/2 by ALPN, as a TLS listener's default) on this address")
	tlsCert := flag.String("tls-cert", "", "PEM certificate chain of the TLS listener")
	tlsKey := flag.String("tls-key", "", "PEM private key of the TLS listener")
	hold := flag.String("hold", "", "client mode: open -hold-conns keep-alive connections to this address, one GET on each, and hold them idle until killed")
	holdConns := flag.Int("hold-conns", 10000, "connections the -hold client opens")
	flag.Parse()
	var err error
	switch {
	case *hold != "":
		err = holdIdle(*hold, *holdConns)
	case *baseline:
		err = runReverseProxy(*listen, *backends)
	default:
		err = run(*listen, *backends, *lb, *pprof, *accessLog, tlsOptions{*tlsListen, *tlsCert, *tlsKey})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "strata-l7bench:", err)
		os.Exit(1)
	}
}

// runReverseProxy is the baseline the l7 package is measured against: the
// standard library's reverse proxy, tuned only as peers.md describes
// (MaxIdleConnsPerHost 256), round robin over the backends.
func runReverseProxy(listen, backends string) error {
	var targets []*url.URL
	for _, a := range strings.Split(backends, ",") {
		if a = strings.TrimSpace(a); a != "" {
			targets = append(targets, &url.URL{Scheme: "http", Host: a})
		}
	}
	if len(targets) == 0 {
		return fmt.Errorf("no backends given (-backends host:port,...)")
	}
	var next atomic.Uint64
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 256
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(targets[next.Add(1)%uint64(len(targets))])
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport: tr,
	}
	return http.ListenAndServe(listen, rp)
}

// tlsOptions add a second listener that terminates TLS.
type tlsOptions struct{ listen, cert, key string }

func run(listen, backends, lb, pprof, accessLog string, tlsOpts tlsOptions) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	builder, err := balance.Builder(lb, balance.Options{})
	if err != nil {
		return err
	}
	pool := upstream.NewPool("bench", upstream.Options{Builder: builder})
	var specs []upstream.Spec
	for _, a := range strings.Split(backends, ",") {
		if a = strings.TrimSpace(a); a != "" {
			specs = append(specs, upstream.Spec{Addr: a, Weight: 1})
		}
	}
	if len(specs) == 0 {
		return fmt.Errorf("no backends given (-backends host:port,...)")
	}
	if err := pool.Update(specs); err != nil {
		return err
	}
	if pprof != "" {
		go func() { log.Warn("pprof", "err", http.ListenAndServe(pprof, nil)) }()
	}
	// Metrics on, as under the supervisor: their cost is part of the figure.
	srv := l7.NewServer(l7.Options{Logger: log, Registry: prometheus.NewRegistry()})
	cfg := &config.L7{Listeners: []config.Listener{{Name: "bench", Listen: listen, Routes: []config.Route{{Pool: "bench"}}}}}
	if tlsOpts.listen != "" {
		// The same route behind TLS; HTTP/2 is offered by ALPN as in a
		// default config (http2 defaults to true on a TLS listener).
		cfg.Listeners = append(cfg.Listeners, config.Listener{Name: "bench-tls", Listen: tlsOpts.listen,
			TLS:    &config.ListenerTLS{Certificates: []config.Certificate{{CertFile: tlsOpts.cert, KeyFile: tlsOpts.key}}},
			Routes: []config.Route{{Pool: "bench"}}})
	}
	if accessLog != "" {
		for i := range cfg.Listeners {
			cfg.Listeners[i].AccessLog = &config.AccessLog{Path: accessLog, Format: "combined"}
		}
	}
	if err := srv.Apply(cfg, map[string]*upstream.Pool{"bench": pool}); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
