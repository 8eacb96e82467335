package config

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Registry is the service registry role: a Nacos-style naming service
// replicated by Raft. Its fields, defaults (onDefaults) and validation
// (onValidate) live in this file.
type Registry struct {
	// Listen is the HTTP API's host:port (default 127.0.0.1:8848, Nacos's
	// port). It is also the node's ID in the cluster.
	Listen string `yaml:"listen"`
	// Advertise is the HTTP address other nodes and clients reach this
	// node at, and its ID (default: listen; required when listen is a
	// wildcard address).
	Advertise string `yaml:"advertise"`
	// RaftListen is where Raft talks to the other nodes (default: the
	// listen port − 1000, as Nacos's 7848 is 8848 − 1000, on 127.0.0.1
	// unless Raft has TLS or is marked insecure, then on the listen host).
	RaftListen string `yaml:"raft_listen"`
	// Raft secures the Raft transport.
	Raft RegistryRaft `yaml:"raft"`
	// NacosGRPC is the Nacos 2.x gRPC API, which Nacos 2 clients use.
	NacosGRPC RegistryNacosGRPC `yaml:"nacos_grpc"`
	// Data is the directory of the Raft log and snapshots (default
	// ./data/registry); "memory" keeps everything in memory.
	Data string `yaml:"data"`
	// Join lists HTTP addresses of existing nodes to join; empty
	// bootstraps a cluster of one.
	Join []string `yaml:"join"`
	// Token is the admin token that service changes, weight changes and
	// joins need. Required (or TokenFile) when listen is not a loopback
	// address. Secrets stay out of JSON renderings of the config.
	Token string `yaml:"token" json:"-"`
	// TokenFile reads Token from a file that is not world-readable.
	TokenFile string `yaml:"token_file"`
	// Namespaces lists the namespaces that require an access token.
	Namespaces []RegistryNamespace `yaml:"namespaces"`
	// HeartbeatInterval is how often clients are told to beat (default 5s).
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// UnhealthyAfter without a heartbeat marks an ephemeral instance
	// unhealthy (default 15s).
	UnhealthyAfter Duration `yaml:"unhealthy_after"`
	// RemoveAfter without a heartbeat removes it (default 30s).
	RemoveAfter Duration `yaml:"remove_after"`
	// MaxWait caps the wait of a blocking query (default 5m).
	MaxWait Duration `yaml:"max_wait"`
	// MaxWatchers bounds the blocking queries and watch streams parked on
	// the node at once (default 65536); more are answered 429.
	MaxWatchers int `yaml:"max_watchers"`
	// MaxWatchersPerClient bounds those of one client address (default
	// 256), so one host cannot take the whole of MaxWatchers.
	MaxWatchersPerClient int `yaml:"max_watchers_per_client"`
	// WatchWriteTimeout bounds each write of a blocking query's answer or
	// a watch stream's line (default 10s); a client that stops reading is
	// disconnected instead of holding its slot forever.
	WatchWriteTimeout Duration `yaml:"watch_write_timeout"`
	// Check is how the servers check persistent instances (default tcp).
	Check *HealthCheck `yaml:"check"`
	// Limits bound what clients may store.
	Limits RegistryLimits `yaml:"limits"`
	// Config bounds the config service (Nacos ConfigService).
	Config RegistryConfig `yaml:"config"`
}

// RegistryConfig bounds the config service.
type RegistryConfig struct {
	// History is how many versions of each configuration are kept for
	// history and rollback (default 20).
	History int `yaml:"history"`
	// MaxContentBytes bounds one configuration's content (default
	// 102400, at most 524288).
	MaxContentBytes int `yaml:"max_content_bytes"`
	// MaxConfigs bounds the configurations of one namespace (default
	// 10000).
	MaxConfigs int `yaml:"max_configs"`
}

// RegistryNacosGRPC is the listener of the Nacos 2.x gRPC API.
type RegistryNacosGRPC struct {
	// Listen is its host:port (default: the listen host with the listen
	// port + 1000, 9848 for 8848, where Nacos 2 clients look for it), or
	// "off" to serve none.
	Listen string `yaml:"listen"`
}

// RegistryNacosGRPCOff is the listen value that turns the Nacos gRPC API
// off.
const RegistryNacosGRPCOff = "off"

// DefaultRegistryNacosGRPCListen is the Nacos gRPC API's address when
// nacos_grpc.listen is not set: the HTTP listen host with its port + 1000
// (Nacos 2 clients add 1000 to the port they are given); port 0 stays 0,
// and a port above 64535 has no room and turns it off.
func DefaultRegistryNacosGRPCListen(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	p, err := strconv.Atoi(port)
	switch {
	case err != nil:
		return ""
	case p == 0:
		return net.JoinHostPort(host, "0")
	case p+RegistryRaftPortOffset > 65535:
		return RegistryNacosGRPCOff
	}
	return net.JoinHostPort(host, strconv.Itoa(p+RegistryRaftPortOffset))
}

// RegistryRaft secures the Raft transport between registry nodes.
type RegistryRaft struct {
	// TLS runs Raft over mutual TLS: both sides present a certificate
	// signed by CAFile and verify the other's.
	TLS *RegistryRaftTLS `yaml:"tls"`
	// Insecure lets plaintext Raft listen off loopback.
	Insecure bool `yaml:"insecure"`
}

// RegistryRaftTLS is the certificate, key and CA of mutual TLS for Raft.
type RegistryRaftTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
}

// RegistryLimits bound instances, services and metadata.
type RegistryLimits struct {
	InstancesPerService   int `yaml:"instances_per_service"`
	InstancesPerNamespace int `yaml:"instances_per_namespace"`
	ServicesPerNamespace  int `yaml:"services_per_namespace"`
	MetadataEntries       int `yaml:"metadata_entries"`
	MetadataBytes         int `yaml:"metadata_bytes"`
}

// RegistryNamespace is a namespace that needs an access token.
type RegistryNamespace struct {
	// Name is the namespace (dev, test, prod …).
	Name string `yaml:"name"`
	// Token is the access token every request in it must carry.
	Token string `yaml:"token" json:"-"`
	// TokenFile reads Token from a file that is not world-readable.
	TokenFile string `yaml:"token_file"`
}

// Registry defaults.
const (
	DefaultRegistryListen = "127.0.0.1:8848"
	DefaultRegistryRaft   = "7848"
	DefaultRegistryData   = "./data/registry"
	// DefaultRegistryMaxWatchers is a parked request's goroutine and
	// buffers (~10 KiB) times 65536: under 1 GiB at the worst.
	DefaultRegistryMaxWatchers = 65536
	// DefaultRegistryMaxWatchersPerClient allows a strata process 256
	// registry-fed pools (each follows its service with one blocking
	// query) while 256 hostile addresses are needed to fill the node.
	DefaultRegistryMaxWatchersPerClient = 256
	DefaultRegistryWatchWriteTimeout    = 10 * time.Second
	// RegistryRaftPortOffset is how far below the HTTP port Raft listens
	// by default: Nacos's own layout (Raft 7848 for HTTP 8848), which
	// leaves the ports above free (Nacos's gRPC takes HTTP + 1000).
	RegistryRaftPortOffset = 1000

	DefaultRegistryInstancesPerService   = 10000
	DefaultRegistryInstancesPerNamespace = 100000
	DefaultRegistryServicesPerNamespace  = 10000
	DefaultRegistryMetadataEntries       = 64
	DefaultRegistryMetadataBytes         = 4096

	// The config service's bounds; internal/registry has the same.
	DefaultRegistryConfigHistory         = 20
	DefaultRegistryConfigMaxContentBytes = 100 << 10
	MaxRegistryConfigContentBytes        = 512 << 10
	DefaultRegistryConfigMaxConfigs      = 10000

	// The heartbeat timings of ephemeral instances; internal/registry
	// takes them for options left zero too.
	DefaultRegistryHeartbeatInterval = 5 * time.Second
	DefaultRegistryUnhealthyAfter    = 15 * time.Second
	DefaultRegistryRemoveAfter       = 30 * time.Second
)

// DefaultRegistryRaftListen is Raft's address when raft_listen is not
// set: the HTTP port − 1000 (7848 for 8848; port 0 stays 0, and a port
// of 1000 or less falls back to 7848), on 127.0.0.1 unless exposed says
// Raft may leave loopback (it has TLS, or is marked insecure), then on the
// HTTP listen host.
func DefaultRegistryRaftListen(listen string, exposed bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	rp := DefaultRegistryRaft
	if p, err := strconv.Atoi(port); err == nil && p == 0 {
		rp = "0"
	} else if err == nil && p > RegistryRaftPortOffset {
		rp = strconv.Itoa(p - RegistryRaftPortOffset)
	}
	if !exposed {
		// An IPv6 listener gets IPv6 loopback, so a v6-only host works.
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, rp)
}

func init() {
	onDefaults(registryDefaults)
	onValidate(registryValidate)
}

func registryDefaults(c *Config, absent func(isZero bool, path string) bool) {
	r := c.Registry
	if r == nil {
		return
	}
	if r.Listen == "" {
		r.Listen = DefaultRegistryListen
	}
	if r.RaftListen == "" {
		r.RaftListen = DefaultRegistryRaftListen(r.Listen, r.Raft.TLS != nil || r.Raft.Insecure)
	}
	if r.NacosGRPC.Listen == "" {
		r.NacosGRPC.Listen = DefaultRegistryNacosGRPCListen(r.Listen)
	}
	l := &r.Limits
	for _, d := range []struct {
		v    *int
		path string
		def  int
	}{
		{&l.InstancesPerService, "registry.limits.instances_per_service", DefaultRegistryInstancesPerService},
		{&l.InstancesPerNamespace, "registry.limits.instances_per_namespace", DefaultRegistryInstancesPerNamespace},
		{&l.ServicesPerNamespace, "registry.limits.services_per_namespace", DefaultRegistryServicesPerNamespace},
		{&l.MetadataEntries, "registry.limits.metadata_entries", DefaultRegistryMetadataEntries},
		{&l.MetadataBytes, "registry.limits.metadata_bytes", DefaultRegistryMetadataBytes},
		{&r.Config.History, "registry.config.history", DefaultRegistryConfigHistory},
		{&r.Config.MaxContentBytes, "registry.config.max_content_bytes", DefaultRegistryConfigMaxContentBytes},
		{&r.Config.MaxConfigs, "registry.config.max_configs", DefaultRegistryConfigMaxConfigs},
	} {
		if absent(*d.v == 0, d.path) {
			*d.v = d.def
		}
	}
	if r.Data == "" {
		r.Data = DefaultRegistryData
	}
	if absent(r.HeartbeatInterval == 0, "registry.heartbeat_interval") {
		r.HeartbeatInterval = Duration(DefaultRegistryHeartbeatInterval)
	}
	if absent(r.UnhealthyAfter == 0, "registry.unhealthy_after") {
		r.UnhealthyAfter = Duration(DefaultRegistryUnhealthyAfter)
	}
	if absent(r.RemoveAfter == 0, "registry.remove_after") {
		r.RemoveAfter = Duration(DefaultRegistryRemoveAfter)
	}
	if absent(r.MaxWait == 0, "registry.max_wait") {
		r.MaxWait = Duration(5 * time.Minute)
	}
	if absent(r.MaxWatchers == 0, "registry.max_watchers") {
		r.MaxWatchers = DefaultRegistryMaxWatchers
	}
	if absent(r.MaxWatchersPerClient == 0, "registry.max_watchers_per_client") {
		r.MaxWatchersPerClient = DefaultRegistryMaxWatchersPerClient
	}
	if absent(r.WatchWriteTimeout == 0, "registry.watch_write_timeout") {
		r.WatchWriteTimeout = Duration(DefaultRegistryWatchWriteTimeout)
	}
	if h := r.Check; h != nil {
		if h.Type == "" {
			h.Type = "tcp"
		}
		if absent(h.Interval == 0, "registry.check.interval") {
			h.Interval = DefaultInterval
		}
		if absent(h.Timeout == 0, "registry.check.timeout") {
			h.Timeout = DefaultTimeout
		}
		if h.Jitter == nil {
			h.Jitter = ptr(h.Interval / 10)
		}
		if absent(h.Rise == 0, "registry.check.rise") {
			h.Rise = DefaultRise
		}
		if absent(h.Fall == 0, "registry.check.fall") {
			h.Fall = DefaultFall
		}
		if (h.Type == "http" || h.Type == "https") && h.Path == "" {
			h.Path, h.Method, h.ExpectStatus = DefaultPath, DefaultMethod, DefaultExpectStatus
		}
	}
}

func registryValidate(v *validator, _ map[string]bool) {
	r := v.c.Registry
	if r == nil {
		return
	}
	host, ok := v.addr("registry.listen", r.Listen, false)
	if r.Token != "" && r.TokenFile != "" {
		v.errorf("registry.token_file", "set token or token_file, not both")
	}
	if ok && r.Token == "" && r.TokenFile == "" && !isLoopback(host) {
		v.errorf("registry.token", "a token (or token_file) is required when registry.listen (%s) is not a loopback address", r.Listen)
	}
	if r.Advertise != "" {
		v.addr("registry.advertise", r.Advertise, true)
	} else if ok && (host == "" || host == "0.0.0.0" || host == "::") {
		v.errorf("registry.advertise", "is required when registry.listen (%s) is a wildcard address", r.Listen)
	}
	if rh, ok := v.addr("registry.raft_listen", r.RaftListen, false); ok && !isLoopback(rh) && r.Raft.TLS == nil && !r.Raft.Insecure {
		v.errorf("registry.raft_listen", "%s is not a loopback address, and Raft without registry.raft.tls is plaintext and unauthenticated; set registry.raft.tls, or registry.raft.insecure: true to accept that", r.RaftListen)
	}
	if l := r.NacosGRPC.Listen; l != RegistryNacosGRPCOff {
		if gh, ok := v.addr("registry.nacos_grpc.listen", l, false); ok && r.Token == "" && r.TokenFile == "" && !isLoopback(gh) {
			v.errorf("registry.nacos_grpc.listen", "%s is not a loopback address, and without registry.token anyone who reaches it could write; set a token, or off", l)
		}
	}
	if t := r.Raft.TLS; t != nil {
		for _, f := range []struct{ name, val string }{{"cert_file", t.CertFile}, {"key_file", t.KeyFile}, {"ca_file", t.CAFile}} {
			if f.val == "" {
				v.errorf("registry.raft.tls."+f.name, "is required")
			}
		}
	}
	for _, f := range []struct {
		name string
		val  int
	}{
		{"instances_per_service", r.Limits.InstancesPerService}, {"instances_per_namespace", r.Limits.InstancesPerNamespace},
		{"services_per_namespace", r.Limits.ServicesPerNamespace}, {"metadata_entries", r.Limits.MetadataEntries},
		{"metadata_bytes", r.Limits.MetadataBytes},
	} {
		if f.val < 1 {
			v.errorf("registry.limits."+f.name, "must be at least 1")
		}
	}
	for _, f := range []struct {
		name string
		val  int
	}{
		{"history", r.Config.History}, {"max_content_bytes", r.Config.MaxContentBytes}, {"max_configs", r.Config.MaxConfigs},
	} {
		if f.val < 1 {
			v.errorf("registry.config."+f.name, "must be at least 1")
		}
	}
	if r.Config.History > 1000 {
		v.errorf("registry.config.history", "must be at most 1000 (every version is kept in memory and in snapshots)")
	}
	if r.Config.MaxContentBytes > MaxRegistryConfigContentBytes {
		v.errorf("registry.config.max_content_bytes", "must be at most %d (a content travels whole in one Raft entry)", MaxRegistryConfigContentBytes)
	}
	for i, j := range r.Join {
		v.addr(fmt.Sprintf("registry.join[%d]", i), j, true)
	}
	if r.HeartbeatInterval <= 0 {
		v.errorf("registry.heartbeat_interval", "must be positive")
	}
	if r.UnhealthyAfter <= r.HeartbeatInterval {
		v.errorf("registry.unhealthy_after", "must be longer than heartbeat_interval (%s)", r.HeartbeatInterval.D())
	}
	if r.RemoveAfter < r.UnhealthyAfter {
		v.errorf("registry.remove_after", "must not be shorter than unhealthy_after (%s)", r.UnhealthyAfter.D())
	}
	if r.MaxWait <= 0 {
		v.errorf("registry.max_wait", "must be positive")
	}
	if r.MaxWatchers <= 0 {
		v.errorf("registry.max_watchers", "must be positive")
	}
	if r.MaxWatchersPerClient <= 0 {
		v.errorf("registry.max_watchers_per_client", "must be positive")
	} else if r.MaxWatchersPerClient > r.MaxWatchers {
		v.errorf("registry.max_watchers_per_client", "must not be more than max_watchers (%d)", r.MaxWatchers)
	}
	if r.WatchWriteTimeout <= 0 {
		v.errorf("registry.watch_write_timeout", "must be positive")
	}
	seen := map[string]bool{}
	for i, ns := range r.Namespaces {
		p := fmt.Sprintf("registry.namespaces[%d]", i)
		if ns.Name == "" {
			v.errorf(p+".name", "is required")
		}
		switch {
		case ns.Token == "" && ns.TokenFile == "":
			v.errorf(p+".token", "is required (or token_file)")
		case ns.Token != "" && ns.TokenFile != "":
			v.errorf(p+".token_file", "set token or token_file, not both")
		}
		if seen[ns.Name] {
			v.errorf(p+".name", "namespace %q is listed twice", ns.Name)
		}
		seen[ns.Name] = true
	}
	if r.Check != nil {
		v.health("registry.check", r.Check)
	}
}
