package main

import (
	"flag"
	"io"
	"time"

	"github.com/strata-lb/strata/internal/demo"
)

// cmdDemo is `strata demo` (see internal/demo) and `strata demo app`, the
// demo's app instances, which the demo starts as children of this binary.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "app":
			return cmdDemoApp(args[1:], stderr)
		case "cluster":
			return cmdDemoCluster(args[1:], stdout, stderr)
		case "cluster-client":
			return cmdDemoClusterClient(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := demo.Options{Version: version, Stdout: stdout, Stderr: stderr}
	fs.StringVar(&o.Admin, "admin", "127.0.0.1:9901", "the edge process's admin listener and dashboard")
	fs.StringVar(&o.Registry, "registry", "127.0.0.1:8848", "the registry's HTTP address")
	fs.StringVar(&o.Raft, "raft", "127.0.0.1:7848", "the registry's Raft address")
	fs.StringVar(&o.DNS, "dns", "127.0.0.1:8053", "the DNS server's address (UDP and TCP)")
	fs.StringVar(&o.VIP, "vip", "127.0.0.1:8000", "the l4 VIP")
	fs.StringVar(&o.L7, "l7", "127.0.0.1:8081,127.0.0.1:8082", "the two l7 nodes' listen addresses")
	fs.StringVar(&o.L7Admin, "l7-admin", "127.0.0.1:9911,127.0.0.1:9912", "the two l7 nodes' admin listeners and dashboards")
	fs.StringVar(&o.Apps, "apps", "127.0.0.1:9001", "the six app instances' addresses: a list of six, or the first of six consecutive ports")
	fs.StringVar(&o.Zone, "zone", "demo.test", "the DNS zone; www.ZONE answers the VIP")
	fs.Float64Var(&o.Rate, "rate", 5, "requests per second of the traffic generator")
	fs.DurationVar(&o.TrafficFor, "traffic-for", time.Hour, "stop the traffic generator after this long")
	fs.IntVar(&o.TrafficMax, "traffic-max", 20000, "stop the traffic generator after this many requests (0: no traffic)")
	fs.DurationVar(&o.Restart, "restart", 15*time.Second, "restart a killed l7 node or app instance after this long (0: never)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	return demo.Run(o)
}

func cmdDemoApp(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demo.AppOptions
	fs.StringVar(&o.Name, "name", "app-1", "the instance's `name`, in its answers")
	fs.StringVar(&o.Zone, "zone", "zone-a", "the instance's zone (its registry cluster)")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:9001", "HTTP listen `address`")
	fs.StringVar(&o.Registry, "registry", "127.0.0.1:8848", "registry `address`")
	fs.StringVar(&o.Service, "service", "web", "the registry service to join")
	fs.StringVar(&o.Token, "token", "", "the registry's `token`, when it has one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	return demo.App(o, stderr)
}

// cmdDemoCluster is `strata demo cluster`: the l4 cluster with BGP and
// ECMP in network namespaces (root and FRR needed).
func cmdDemoCluster(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := demo.ClusterOptions{Version: version, Stdout: stdout, Stderr: stderr}
	fs.Float64Var(&o.Rate, "rate", 20, "new connections a second from the client namespace")
	fs.DurationVar(&o.TrafficFor, "traffic-for", time.Hour, "stop the client after this long")
	fs.IntVar(&o.TrafficMax, "traffic-max", 100000, "stop the client after this many requests (0: no traffic)")
	fs.DurationVar(&o.Restart, "restart", 15*time.Second, "restart a killed node, router daemon or app instance after this long (0: never)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	return demo.RunCluster(o)
}

// cmdDemoClusterClient is the cluster demo's client, which the demo
// starts in its client namespace.
func cmdDemoClusterClient(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo cluster-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demo.ClusterClientOptions
	fs.StringVar(&o.URL, "url", "http://"+demo.ClusterVIP+"/", "the `URL` to ask for")
	fs.StringVar(&o.Nodes, "nodes", "", "`name=address` of each l4 node, comma-separated")
	fs.Float64Var(&o.Rate, "rate", 20, "new connections a second")
	fs.DurationVar(&o.For, "for", time.Hour, "stop after this long")
	fs.IntVar(&o.Max, "max", 100000, "stop after this many requests")
	fs.DurationVar(&o.Every, "every", 2*time.Second, "print the per-node counts this often")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	return demo.ClusterClient(o, stdout, stderr)
}
