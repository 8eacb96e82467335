// Command strata is the load-balancing stack in one binary: each role
// (l7 today; l4, dns and registry as they arrive) runs alone or together
// from one config file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/supervisor"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand. Each role adds its own in a file of its own
// (l7.go, dns.go …) with an init that calls addCommand.
type command struct {
	name, args, summary string
	run                 func(args []string, stdout, stderr io.Writer) int
}

var commands []command

func addCommand(c command) { commands = append(commands, c) }

func init() {
	addCommand(command{"run", "-c FILE", "run every role the config file configures", func(a []string, _, e io.Writer) int { return cmdRun(a, e) }})
	addCommand(command{"validate", "-c FILE", "check a config file; exit 1 with file:line on errors", cmdValidate})
	addCommand(command{"demo", "[cluster]", "run a self-contained demo on 127.0.0.1; demo cluster: the l4 cluster with BGP and ECMP in network namespaces (root, FRR)", cmdDemo})
	addCommand(command{"version", "", "print the version", func(_ []string, o, _ io.Writer) int {
		fmt.Fprintf(o, "strata %s\n", version)
		return 0
	}})
}

func usage() string {
	var b strings.Builder
	b.WriteString("strata — DNS, L4, L7 and registry load balancing in one binary.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-30s %s\n", strings.TrimSpace("strata "+c.name+" "+c.args), c.summary)
	}
	b.WriteString("\nRun 'strata COMMAND -h' for a command's flags.\n")
	return b.String()
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "-version", "--version":
		args[0] = "version"
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "strata: unknown command %q\n\n%s", args[0], usage())
	return 2
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "strata.yaml", "config `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := config.Load(*path); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "strata.yaml", "config `file`")
	watch := fs.Bool("watch", true, "reload when the config file changes")
	from := addConfigFromFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if from.uri != "" {
		return from.run(fs, stderr)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	sup := supervisor.New(supervisor.Options{
		Source:  supervisor.Source{Path: *path},
		Logger:  log,
		Version: version,
		Watch:   *watch,
	})
	return serve(sup, log)
}

// serve starts sup and runs it until SIGTERM or SIGINT, reloading on
// SIGHUP. It returns the process exit status.
func serve(sup *supervisor.Supervisor, log *slog.Logger) int {
	return serveThen(sup, log, nil)
}

// serveThen is serve, calling started (when not nil) once sup has
// started.
func serveThen(sup *supervisor.Supervisor, log *slog.Logger, started func()) int {
	// Take the signals before starting: a SIGHUP or SIGTERM that arrives
	// while the roles start (or right after "started" is logged) must be
	// handled, not kill the process with Go's default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := sup.Start(); err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	log.Info("strata started", "version", version, "pid", os.Getpid())
	if started != nil {
		started()
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			log.Info("SIGHUP: reloading")
			_ = sup.Reload() // a bad file is logged; the old config keeps serving
			continue
		}
		// The lameduck delay comes first, then the grace for in-flight work.
		grace := sup.Config().ShutdownDelay.D() + sup.Config().ShutdownTimeout.D()
		log.Info("shutting down", "signal", sig.String(), "grace", grace.String())
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		err := sup.Shutdown(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Error("shutdown", "err", err)
			return 1
		}
		if err != nil {
			log.Warn("shutdown deadline passed; in-flight work was cut", "err", err)
		}
		log.Info("stopped")
		return 0
	}
	return 0
}

func newLogger(lc config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
