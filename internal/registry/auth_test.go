package registry

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// offLoopback is a loopback listener that reports a routable address, so
// a test can check what Start does off loopback without listening there.
type offLoopback struct{ net.Listener }

func (offLoopback) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 8848} }

// TestStartOffLoopbackNeedsToken: a registry whose port is reachable from
// other machines refuses to start without an admin token, and with one it
// refuses anonymous writes even in a namespace without a token of its own.
func TestStartOffLoopbackNeedsToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = Start(offLoopback{ln}, Options{RaftAddr: "127.0.0.1:0", Advertise: ln.Addr().String(), Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "needs an admin token") {
		t.Fatalf("Start off loopback without a token: err = %v", err)
	}

	n := startNode(t, Options{AdminToken: "adm"})
	reg := map[string]any{"service": "web", "ip": "127.0.0.1", "port": 80}
	if code, body, _ := do(t, "PUT", "http://"+n.ID()+"/v1/registry/instances", "", reg); code != 403 || !strings.Contains(string(body), "needs the admin token") {
		t.Fatalf("anonymous register: %d %s", code, body)
	}
	if _, ok := n.Store().Get(Key{Service: "web"}); ok {
		t.Fatal("the anonymous registration reached the store")
	}
	if m := gatherParked(t, n); m["strata_registry_writes_refused_total{token}"] != 1 || m["strata_registry_writes_refused_total{limit}"] != 0 {
		t.Errorf("metrics: %v", m)
	}
}

// TestReregisterKeepsAdminWeight: a weight or enabled change through a
// re-registration needs the admin token, as a PATCH does, so a client
// cannot undo the operator's drain by registering again.
func TestReregisterKeepsAdminWeight(t *testing.T) {
	n := startNode(t, Options{AdminToken: "adm", NamespaceTokens: map[string]string{"prod": "p"}})
	u := "http://" + n.ID()
	reg := func(token string, extra map[string]any) (int, string) {
		b := map[string]any{"namespace": "prod", "service": "web", "ip": "127.0.0.1", "port": 80}
		for k, v := range extra {
			b[k] = v
		}
		code, body, _ := do(t, "PUT", u+"/v1/registry/instances", token, b)
		return code, string(body)
	}
	weight := func() (float64, bool) {
		in, ok := n.Store().Instance(Key{Namespace: "prod", Service: "web"}, "127.0.0.1#80#DEFAULT")
		if !ok {
			t.Fatal("instance gone")
		}
		return in.Weight, in.Enabled
	}
	if code, body := reg("p", nil); code != 200 {
		t.Fatalf("first registration: %d %s", code, body)
	}
	patch := map[string]any{"namespace": "prod", "service": "web", "ip": "127.0.0.1", "port": 80, "set_weight": 0}
	if code, body, _ := do(t, "PATCH", u+"/v1/registry/instances", "adm", patch); code != 200 {
		t.Fatalf("admin drain: %d %s", code, body)
	}
	for _, tc := range []struct {
		desc, token string
		extra       map[string]any
		want        int
		weight      float64
		enabled     bool
	}{
		{"namespace token, weight back to 1", "p", nil, 403, 0, true},
		{"namespace token, disabling", "p", map[string]any{"weight": 0, "enabled": false}, 403, 0, true},
		{"namespace token, same weight, new metadata", "p", map[string]any{"weight": 0, "metadata": map[string]string{"v": "2"}}, 200, 0, true},
		{"admin token, weight 5", "adm", map[string]any{"weight": 5}, 200, 5, true},
	} {
		code, body := reg(tc.token, tc.extra)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.desc, code, body, tc.want)
		}
		if w, e := weight(); w != tc.weight || e != tc.enabled {
			t.Errorf("%s: weight %v enabled %v, want %v %v", tc.desc, w, e, tc.weight, tc.enabled)
		}
	}
	// Nacos's register is the same rule.
	if code, body, _ := do(t, "POST", u+"/nacos/v1/ns/instance?namespaceId=prod&serviceName=web&ip=127.0.0.1&port=80&weight=1&accessToken=p", "", nil); code != 403 {
		t.Errorf("nacos re-register with a new weight: %d %s", code, body)
	}
	if w, _ := weight(); w != 5 {
		t.Errorf("weight after the nacos re-register: %v", w)
	}
}

// TestLimits: each limit refuses the write that would pass it with a 403
// naming the limit, counts persistent instances like the others, and
// frees its slot when an instance leaves.
func TestLimits(t *testing.T) {
	n := startNode(t, Options{Limits: Limits{InstancesPerService: 2, InstancesPerNamespace: 3, ServicesPerNamespace: 2, MetadataEntries: 2, MetadataBytes: 16}})
	u := "http://" + n.ID()
	reg := func(ns, svc, ip string, extra map[string]any) (int, string) {
		b := map[string]any{"namespace": ns, "service": svc, "ip": ip, "port": 80}
		for k, v := range extra {
			b[k] = v
		}
		code, body, _ := do(t, "PUT", u+"/v1/registry/instances", "", b)
		return code, string(body)
	}
	for _, tc := range []struct {
		desc, ns, svc, ip string
		extra             map[string]any
		want              int
		msg               string
	}{
		{"first of a", "", "a", "127.0.0.1", nil, 200, ""},
		{"second of a, persistent", "", "a", "127.0.0.2", map[string]any{"ephemeral": false}, 200, ""},
		{"third of a", "", "a", "127.0.0.3", nil, 403, "registry.limits.instances_per_service (2)"},
		{"a re-registration at the limit", "", "a", "127.0.0.1", map[string]any{"metadata": map[string]string{"v": "2"}}, 200, ""},
		{"first of b", "", "b", "127.0.0.1", nil, 200, ""},
		{"second of b, past the namespace", "", "b", "127.0.0.2", nil, 403, "registry.limits.instances_per_namespace (3)"},
		{"a third service", "", "c", "127.0.0.1", nil, 403, "registry.limits.services_per_namespace"},
		{"another namespace", "dev", "c", "127.0.0.1", nil, 200, ""},
		{"three metadata entries", "dev", "c", "127.0.0.1", map[string]any{"metadata": map[string]string{"a": "1", "b": "2", "c": "3"}}, 403, "registry.limits.metadata_entries (2)"},
		{"17 bytes of metadata", "dev", "c", "127.0.0.1", map[string]any{"metadata": map[string]string{"k": strings.Repeat("v", 16)}}, 403, "registry.limits.metadata_bytes (16)"},
	} {
		code, body := reg(tc.ns, tc.svc, tc.ip, tc.extra)
		if code != tc.want || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want %d and %q", tc.desc, code, body, tc.want, tc.msg)
		}
	}
	if code, body, _ := do(t, "PUT", u+"/v1/registry/services", "", map[string]any{"service": "d"}); code != 403 || !strings.Contains(string(body), "services_per_namespace") {
		t.Errorf("creating a third service: %d %s", code, body)
	}
	if code, body, _ := do(t, "POST", u+"/nacos/v1/ns/instance?serviceName=a&ip=127.0.0.9&port=80", "", nil); code != 403 || !strings.Contains(string(body), "instances_per_service") {
		t.Errorf("nacos register past the service limit: %d %s", code, body)
	}
	if code, body, _ := do(t, "DELETE", u+"/v1/registry/instances?service=a&ip=127.0.0.1&port=80", "", nil); code != 200 {
		t.Fatalf("deregister: %d %s", code, body)
	}
	if code, body := reg("", "a", "127.0.0.3", nil); code != 200 {
		t.Errorf("registering into the freed slot: %d %s", code, body)
	}
	if m := gatherParked(t, n); m["strata_registry_writes_refused_total{limit}"] != 7 || m["strata_registry_writes_refused_total{token}"] != 0 {
		t.Errorf("metrics: %v", m)
	}
}
