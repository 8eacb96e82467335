package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRegistryDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte("registry:\n  check: {type: tcp}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Registry
	if r.Listen != DefaultRegistryListen || r.RaftListen != "127.0.0.1:7848" || r.Data != DefaultRegistryData ||
		r.HeartbeatInterval.D() != 5*time.Second || r.UnhealthyAfter.D() != 15*time.Second || r.RemoveAfter.D() != 30*time.Second ||
		r.MaxWait.D() != 5*time.Minute || r.MaxWatchers != 65536 || r.MaxWatchersPerClient != 256 ||
		r.WatchWriteTimeout.D() != 10*time.Second || r.Check.Interval != DefaultInterval || r.Check.Rise != DefaultRise {
		t.Errorf("defaults not applied: %+v", r)
	}
	if r.NacosGRPC.Listen != "127.0.0.1:9848" {
		t.Errorf("nacos_grpc.listen defaults to %q, want the HTTP port + 1000", r.NacosGRPC.Listen)
	}
	for listen, want := range map[string]string{"127.0.0.1:0": "127.0.0.1:0", "[::1]:18848": "[::1]:19848", "127.0.0.1:65000": "off"} {
		if got := DefaultRegistryNacosGRPCListen(listen); got != want {
			t.Errorf("DefaultRegistryNacosGRPCListen(%s) = %q, want %q", listen, got, want)
		}
	}
	if c, err := Parse("t.yaml", []byte("registry:\n  nacos_grpc: {listen: \"off\"}\n")); err != nil || c.Registry.NacosGRPC.Listen != "off" {
		t.Errorf("nacos_grpc.listen off: %v", err)
	}
	if c, _ := Parse("t.yaml", []byte("pools: []\n")); c.Registry != nil {
		t.Error("registry section appeared from nowhere")
	}
}

func TestRegistryValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		desc, yaml, want string
	}{
		{"public listen without token", "listen: 0.0.0.0:8848", "registry.token: a token (or token_file) is required"},
		{"token and token_file", "token: a\n  token_file: /x", "registry.token_file: set token or token_file, not both"},
		{"namespace token and token_file", "namespaces: [{name: a, token: x, token_file: /x}]", "registry.namespaces[0].token_file: set token or token_file"},
		{"plaintext raft off loopback", "raft_listen: 10.0.0.1:7848", "registry.raft_listen: 10.0.0.1:7848 is not a loopback address, and Raft without registry.raft.tls is plaintext"},
		{"nacos grpc off loopback without a token", "nacos_grpc: {listen: 10.0.0.1:9848}", "registry.nacos_grpc.listen: 10.0.0.1:9848 is not a loopback address"},
		{"bad nacos grpc listen", "nacos_grpc: {listen: nope}", `registry.nacos_grpc.listen: "nope" is not host:port`},
		{"raft tls without a ca", "raft: {tls: {cert_file: a, key_file: b}}", "registry.raft.tls.ca_file: is required"},
		{"zero limit", "limits: {metadata_bytes: -1}", "registry.limits.metadata_bytes: must be at least 1"},
		{"config history negative", "config: {history: -1}", "registry.config.history: must be at least 1"},
		{"config history too long", "config: {history: 5000}", "registry.config.history: must be at most 1000"},
		{"config content too large", "config: {max_content_bytes: 1048576}", "registry.config.max_content_bytes: must be at most 524288"},
		{"config max_configs negative", "config: {max_configs: -5}", "registry.config.max_configs: must be at least 1"},
		{"wildcard without advertise", "listen: 0.0.0.0:8848\n  token: t", "registry.advertise: is required when registry.listen"},
		{"bad advertise", "advertise: \":8848\"", "registry.advertise"},
		{"bad listen", "listen: nope", `registry.listen: "nope" is not host:port`},
		{"bad join", "join: [\"x\"]", "registry.join[0]"},
		{"unhealthy before a beat", "heartbeat_interval: 10s\n  unhealthy_after: 5s", "must be longer than heartbeat_interval"},
		{"removed before unhealthy", "remove_after: 10s", "must not be shorter than unhealthy_after"},
		{"namespace without token", "namespaces: [{name: prod}]", "registry.namespaces[0].token: is required"},
		{"namespace twice", "namespaces: [{name: a, token: x}, {name: a, token: y}]", `namespace "a" is listed twice`},
		{"no watchers", "max_watchers: 0", "registry.max_watchers: must be positive"},
		{"no watchers per client", "max_watchers_per_client: 0", "registry.max_watchers_per_client: must be positive"},
		{"more per client than in all", "max_watchers: 10\n  max_watchers_per_client: 11", "must not be more than max_watchers (10)"},
		{"no write timeout", "watch_write_timeout: 0s", "registry.watch_write_timeout: must be positive"},
		{"bad check", "check: {type: smtp}", `registry.check.type: unknown type "smtp"`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte("registry:\n  "+tc.yaml+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "t.yaml:") {
				t.Errorf("error %v does not cite file:line", err)
			}
		})
	}
	if _, err := Parse("t.yaml", []byte("registry:\n  listen: 0.0.0.0:8848\n  advertise: 10.0.0.1:8848\n  token: s\n")); err != nil {
		t.Errorf("public listen with a token: %v", err)
	}
	if _, err := Parse("t.yaml", []byte("registry:\n  raft_listen: 10.0.0.1:7848\n  raft: {insecure: true}\n")); err != nil {
		t.Errorf("plaintext raft off loopback, marked insecure: %v", err)
	}
}

// TestRegistryRaftDefault: Raft takes the HTTP port − 1000 (Nacos's
// layout, leaving HTTP + 1000 to Nacos gRPC), on loopback unless it has
// TLS or is marked insecure.
func TestRegistryRaftDefault(t *testing.T) {
	for _, tc := range []struct {
		desc, yaml, want string
	}{
		{"nacos port", "listen: 127.0.0.1:8848", "127.0.0.1:7848"},
		{"other port", "listen: 127.0.0.1:8858", "127.0.0.1:7858"},
		{"free port", "listen: 127.0.0.1:0", "127.0.0.1:0"},
		{"low port", "listen: 127.0.0.1:900", "127.0.0.1:7848"},
		{"wildcard stays on loopback", "listen: 0.0.0.0:8848\n  advertise: 10.0.0.1:8848\n  token: t", "127.0.0.1:7848"},
		{"ipv6 loopback", "listen: \"[::]:8848\"\n  advertise: \"[fd00::1]:8848\"\n  token: t", "[::1]:7848"},
		{"insecure follows listen", "listen: 0.0.0.0:8848\n  advertise: 10.0.0.1:8848\n  token: t\n  raft: {insecure: true}", "0.0.0.0:7848"},
		{"tls follows listen", "listen: 10.0.0.1:8848\n  token: t\n  raft: {tls: {cert_file: a, key_file: b, ca_file: c}}", "10.0.0.1:7848"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte("registry:\n  "+tc.yaml+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if c.Registry.RaftListen != tc.want {
				t.Errorf("raft_listen = %s, want %s", c.Registry.RaftListen, tc.want)
			}
		})
	}
}

// TestRegistrySecretsStayOutOfJSON: JSON renderings of the config (the
// golden files, anything that prints a config) leave the tokens out.
func TestRegistrySecretsStayOutOfJSON(t *testing.T) {
	c, err := Parse("t.yaml", []byte("registry:\n  token: admin-s3cret\n  namespaces: [{name: prod, token: prod-s3cret}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cret") {
		t.Fatalf("a token is in the JSON: %s", b)
	}
}
