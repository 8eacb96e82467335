// Command soakapp is the application instance of the e2e chaos soak
// (test/e2e/soak_test.go): a real HTTP server on loopback that says who it
// is, registered in the strata registry with the Go SDK (pkg/client) and
// kept alive by its heartbeats, as a service of a user's would be. It is
// its own small program, not strata's demo, so that the soak's chain does
// not change when the demo does.
//
// SIGTERM deregisters the instance, waits for the l7 nodes to hear of it,
// then stops serving; kill -9 leaves the registry to notice the silence.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strata-lb/strata/pkg/client"
)

func main() {
	name := flag.String("name", "app-1", "the instance's name, in its answers")
	listen := flag.String("listen", "127.0.0.1:9001", "HTTP listen address")
	registry := flag.String("registry", "127.0.0.1:8848", "comma-separated registry addresses")
	service := flag.String("service", "web", "the registry service to join")
	linger := flag.Duration("linger", time.Second, "how long to keep serving after deregistering on SIGTERM")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("instance", *name)

	host, portText, err := net.SplitHostPort(*listen)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		log.Error("-listen is not host:port", "listen", *listen)
		os.Exit(2)
	}
	// A port just freed by a killed instance may still be held for a moment.
	var ln net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", *listen); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		log.Error("listening", "err", err)
		os.Exit(1)
	}
	body := fmt.Sprintf("hello from %s (pid %d)\n", *name, os.Getpid())
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	// The soak reads every process's goroutines from here, and collects
	// its garbage before it measures, as it does strata's through the admin
	// listener.
	mux.Handle("/debug/pprof/goroutine", pprof.Handler("goroutine"))
	mux.Handle("/debug/pprof/heap", pprof.Handler("heap"))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Instance", *name)
		io.WriteString(w, body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serving", "err", err)
		}
	}()

	c, err := client.New(client.Config{Servers: strings.Split(*registry, ","), Logger: log})
	if err != nil {
		log.Error("registry client", "err", err)
		os.Exit(1)
	}
	in := client.Instance{IP: host, Port: port, Metadata: map[string]string{"instance": *name}}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = c.Register(ctx, *service, in)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log.Error("registering", "err", err)
			os.Exit(1)
		}
		select {
		case <-sigs:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	log.Info("registered", "service", *service, "addr", *listen)

	<-sigs
	// Leave the registry first, keep serving while the l7 nodes hear of
	// it, then finish what is in flight.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		log.Warn("deregistering", "err", err)
	}
	time.Sleep(*linger)
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("deregistered and stopped")
}
