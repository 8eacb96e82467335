package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/supervisor"
)

func init() {
	addCommand(command{"registry", "--listen ADDR --data DIR [--join HOST:PORT] | remove-peer ID", "run a service registry node (Nacos v1 naming compatible) without a config file, or remove a dead peer", cmdRegistry})
}

// cmdRegistry is the one-liner: it writes the config the flags describe
// and runs it as `strata run` would (-print shows that file).
func cmdRegistry(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "remove-peer" {
		return cmdRegistryRemovePeer(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", config.DefaultRegistryListen, "HTTP API `address`; also the node's ID")
	raftAddr := fs.String("raft", "", "Raft `address` (default: 127.0.0.1 with the HTTP port − 1000, so 7848 for 8848)")
	data := fs.String("data", config.DefaultRegistryData, "data `directory` (Raft log and snapshots), or memory")
	advertise := fs.String("advertise", "", "HTTP `address` other nodes reach this one at (needed when --listen is a wildcard)")
	var join multiFlag
	fs.Var(&join, "join", "HTTP `address` of a node to join; repeat for more")
	token := fs.String("token", "", "admin `token` (required when --listen is not loopback; visible to ps, prefer --token-file)")
	tokenFile := fs.String("token-file", "", "read the admin token from this `file` (not world-readable)")
	raftCert := fs.String("raft-tls-cert", "", "Raft over mutual TLS: this node's certificate `file` (with --raft-tls-key and --raft-tls-ca)")
	raftKey := fs.String("raft-tls-key", "", "Raft over mutual TLS: the certificate's key `file` (not world-readable)")
	raftCA := fs.String("raft-tls-ca", "", "Raft over mutual TLS: the CA `file` that signs every node's certificate")
	raftInsecure := fs.Bool("raft-insecure", false, "let plaintext Raft listen off loopback (a network you trust)")
	nacosGRPC := fs.String("nacos-grpc", "", "Nacos 2 gRPC `address`, or off (default: the --listen host with its port + 1000, so 9848 for 8848)")
	adminAddr := fs.String("admin", "off", "admin listener `address`, or off")
	print := fs.Bool("print", false, "print the config the flags make and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strata registry: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var b strings.Builder
	fmt.Fprintf(&b, "admin:\n  listen: %s\nregistry:\n  listen: %s\n  data: %s\n", strconv.Quote(*adminAddr), strconv.Quote(*listen), strconv.Quote(*data))
	if *raftAddr != "" {
		fmt.Fprintf(&b, "  raft_listen: %s\n", strconv.Quote(*raftAddr))
	}
	if *nacosGRPC != "" {
		fmt.Fprintf(&b, "  nacos_grpc:\n    listen: %s\n", strconv.Quote(*nacosGRPC))
	}
	if *token != "" {
		fmt.Fprintf(&b, "  token: %s\n", strconv.Quote(*token))
	}
	if *tokenFile != "" {
		fmt.Fprintf(&b, "  token_file: %s\n", strconv.Quote(*tokenFile))
	}
	if *raftCert != "" || *raftKey != "" || *raftCA != "" || *raftInsecure {
		b.WriteString("  raft:\n")
		if *raftCert != "" || *raftKey != "" || *raftCA != "" {
			fmt.Fprintf(&b, "    tls:\n      cert_file: %s\n      key_file: %s\n      ca_file: %s\n", strconv.Quote(*raftCert), strconv.Quote(*raftKey), strconv.Quote(*raftCA))
		}
		if *raftInsecure {
			b.WriteString("    insecure: true\n")
		}
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

// cmdRegistryRemovePeer removes a dead node from the registry's Raft
// cluster for good, through any live node (it forwards to the leader).
func cmdRegistryRemovePeer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("registry remove-peer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", config.DefaultRegistryListen, "HTTP `address` of a live registry node")
	token := fs.String("token", "", "admin `token`")
	tokenFile := fs.String("token-file", "", "read the admin token from this `file` (not world-readable)")
	// The ID comes first (strata registry remove-peer ID --server …) or
	// after the flags; flag stops at the first argument, so take it out.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strata registry remove-peer: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if id == "" {
		fmt.Fprintln(stderr, "usage: strata registry remove-peer ID [--server ADDR] [--token-file FILE]; ID is the peer's HTTP address as GET /v1/registry/cluster lists it")
		return 2
	}
	if *tokenFile != "" {
		t, err := config.ReadSecretFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "strata registry remove-peer: --token-file: %v\n", err)
			return 2
		}
		*token = t
	}
	body, _ := json.Marshal(map[string]string{"id": id})
	req, err := http.NewRequest(http.MethodPost, "http://"+*server+"/v1/registry/cluster/remove", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stderr, "strata registry remove-peer: %v\n", err)
		return 2
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "strata registry remove-peer: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "strata registry remove-peer: %s: %s\n", resp.Status, bytes.TrimSpace(out))
		return 1
	}
	fmt.Fprintf(stdout, "removed %s\n", id)
	return 0
}
