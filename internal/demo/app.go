package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/strata-lb/strata/pkg/client"
)

// AppOptions describe one app instance of the demo.
type AppOptions struct {
	Name     string // the instance's name, in its answers
	Zone     string // the instance's zone (its registry cluster)
	Listen   string // HTTP listen address
	Registry string // registry address
	Service  string // the registry service to join
	Token    string // the registry's token, when it has one
}

// App is one of the demo's application instances (`strata demo app`,
// started by Run as a child process): a real HTTP server on loopback that
// says who it is, registered in the registry with the Go SDK and kept
// alive by its heartbeats. SIGTERM deregisters it before it stops serving,
// as a well-behaved instance does; kill -9 leaves the registry to notice
// the silence. It returns the exit status.
func App(o AppOptions, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("instance", o.Name)
	host, portText, err := net.SplitHostPort(o.Listen)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		fmt.Fprintf(stderr, "demo app: -listen %q is not host:port\n", o.Listen)
		return 2
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		log.Error("listening", "err", err)
		return 1
	}
	body := fmt.Sprintf("hello from %s (%s, pid %d)\n", o.Name, o.Zone, os.Getpid())
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Instance", o.Name)
		// Say whom the l7 node says the request came from: in the cluster
		// demo, the l4 node that carried it (see ClusterClient).
		if from := r.Header.Get("X-Forwarded-For"); from != "" {
			w.Header().Set(seenFromHeader, from)
		}
		io.WriteString(w, body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serving", "err", err)
		}
	}()

	c, err := client.New(client.Config{Servers: []string{o.Registry}, Token: o.Token, Logger: log})
	if err != nil {
		log.Error("registry client", "err", err)
		return 1
	}
	in := client.Instance{IP: host, Port: port, Cluster: o.Zone, Metadata: map[string]string{"instance": o.Name}}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	// The registry may still be electing itself when the demo starts its
	// instances; try again until it answers.
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = c.Register(ctx, o.Service, in)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log.Error("registering", "err", err)
			return 1
		}
		select {
		case <-sigs:
			return 0
		case <-time.After(100 * time.Millisecond):
		}
	}
	log.Info("registered", "service", o.Service, "addr", o.Listen, "zone", o.Zone)

	<-sigs
	// Leave the registry first, give the l7 nodes a moment to hear of it,
	// then finish what is in flight.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		log.Warn("deregistering", "err", err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("deregistered and stopped")
	return 0
}
