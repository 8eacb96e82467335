package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestPoolRegistryDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte("pools:\n  - name: app\n    registry: {servers: [127.0.0.1:8848], service: orders}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Pools[0].Registry
	if r.Namespace != DefaultRegistryNamespace || r.Group != DefaultRegistryGroup || r.Service != "orders" {
		t.Errorf("defaults not applied: %+v", r)
	}
	if c, _ := Parse("t.yaml", []byte("pools:\n  - name: app\n")); c.Pools[0].Registry != nil {
		t.Error("registry section appeared from nowhere")
	}
}

func TestPoolRegistryValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		desc, yaml, want string
		line             int
	}{
		{"both sources", "backends: [{address: 127.0.0.1:1}]\n    registry: {servers: [127.0.0.1:8848], service: s}", "pools[0].registry: a pool takes its backends from backends or from registry, not both", 4},
		{"no servers", "registry: {service: s}", "pools[0].registry.servers: at least one registry server", 3},
		{"bad server", "registry:\n      servers: [nope]\n      service: s", `pools[0].registry.servers[0]: "nope" is not host:port`, 4},
		{"server without host", "registry: {servers: [\":8848\"], service: s}", "pools[0].registry.servers[0]", 3},
		{"no service", "registry:\n      servers: [127.0.0.1:8848]", "pools[0].registry.service: service is required", 3},
		{"empty cluster", "registry:\n      servers: [127.0.0.1:8848]\n      service: s\n      clusters: [a, \"\"]", "pools[0].registry.clusters[1]: cluster name must not be empty", 6},
		{"bad allow", "registry:\n      servers: [127.0.0.1:8848]\n      service: s\n      allow: [10.0.0.0/8, nope]", `pools[0].registry.allow[1]: "nope" is not a CIDR or address`, 6},
		{"empty selector key", "registry:\n      servers: [127.0.0.1:8848]\n      service: s\n      selector: {\"\": x}", "pools[0].registry.selector: selector keys must not be empty", 6},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte("pools:\n  - name: app\n    "+tc.yaml+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if want := fmt.Sprintf("t.yaml:%d", tc.line); !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not cite %s", err, want)
			}
		})
	}
}
