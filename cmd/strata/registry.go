package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/supervisor"
)

func init() {
	addCommand(command{"registry", "--listen ADDR --data DIR [--join HOST:PORT]", "run a service registry node (Nacos v1 naming compatible) without a config file", cmdRegistry})
}

// cmdRegistry is the one-liner: it writes the config the flags describe
// and runs it as `strata run` would (-print shows that file).
func cmdRegistry(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", config.DefaultRegistryListen, "HTTP API `address`; also the node's ID")
	raftAddr := fs.String("raft", "", "Raft `address` (default: the listen host with port 7848, or the HTTP port + 1000 when that is not 8848)")
	data := fs.String("data", config.DefaultRegistryData, "data `directory` (Raft log and snapshots), or memory")
	advertise := fs.String("advertise", "", "HTTP `address` other nodes reach this one at (needed when --listen is a wildcard)")
	var join multiFlag
	fs.Var(&join, "join", "HTTP `address` of a node to join; repeat for more")
	token := fs.String("token", "", "admin `token` (required when --listen is not loopback)")
	adminAddr := fs.String("admin", "off", "admin listener `address`, or off")
	print := fs.Bool("print", false, "print the config the flags make and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strata registry: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *raftAddr == "" {
		// Nodes on one host each need their own Raft port: derive it
		// from the HTTP port when that is not Nacos's default.
		host, port, err := net.SplitHostPort(*listen)
		if err == nil {
			p, _ := strconv.Atoi(port)
			if p != 8848 && p > 1000 && p < 64536 {
				*raftAddr = net.JoinHostPort(host, strconv.Itoa(p+1000))
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "admin:\n  listen: %s\nregistry:\n  listen: %s\n  data: %s\n", strconv.Quote(*adminAddr), strconv.Quote(*listen), strconv.Quote(*data))
	if *raftAddr != "" {
		fmt.Fprintf(&b, "  raft_listen: %s\n", strconv.Quote(*raftAddr))
	}
	if *token != "" {
		fmt.Fprintf(&b, "  token: %s\n", strconv.Quote(*token))
	}
	if *advertise != "" {
		fmt.Fprintf(&b, "  advertise: %s\n", strconv.Quote(*advertise))
	}
	if len(join) > 0 {
		b.WriteString("  join:\n")
		for _, j := range join {
			fmt.Fprintf(&b, "    - %s\n", strconv.Quote(j))
		}
	}
	if *print {
		io.WriteString(stdout, b.String())
		return 0
	}
	if _, err := config.Parse("strata registry", []byte(b.String())); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := newLogger(config.Log{Level: "info", Format: "text"}, stderr)
	sup := supervisor.New(supervisor.Options{
		Source:  supervisor.Source{Name: "strata registry", Data: []byte(b.String())},
		Logger:  log,
		Version: version,
	})
	return serve(sup, log)
}
