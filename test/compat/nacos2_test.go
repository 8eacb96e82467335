package compat

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/strata-lb/strata/internal/registry"
)

// startRegistry runs a one-node registry with the Nacos gRPC API on
// loopback and waits until it leads.
func startRegistry(t *testing.T, o registry.Options) *registry.Node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.RaftAddr, o.NacosGRPC, o.SweepInterval = "127.0.0.1:0", "127.0.0.1:0", 50*time.Millisecond
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := registry.Start(ln, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	waitFor(t, 10*time.Second, "leader", n.Serving)
	return n
}

// sdkDir is a directory for an SDK client's cache and logs. Not
// t.TempDir: the SDK goes on writing there for a moment after CloseClient
// (its listen loop, its logger), and TempDir's cleanup fails the test when
// a file appears while it removes the directory.
func sdkDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nacos-sdk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A second try catches files written during the first.
		if os.RemoveAll(dir) != nil {
			os.RemoveAll(dir)
		}
	})
	return dir
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newClient makes an official Nacos 2 naming client of n, talking gRPC.
func newClient(t *testing.T, n *registry.Node) naming_client.INamingClient {
	return newClientAs(t, n, "", "")
}

// newClientAs is newClient with a Nacos user and password, which the SDK
// logs in with over HTTP before it sends the token in every gRPC payload.
func newClientAs(t *testing.T, n *registry.Node, user, password string) naming_client.INamingClient {
	t.Helper()
	_, hp, _ := net.SplitHostPort(n.Addr().String())
	_, gp, _ := net.SplitHostPort(n.NacosGRPCAddr().String())
	httpPort, _ := strconv.ParseUint(hp, 10, 64)
	grpcPort, _ := strconv.ParseUint(gp, 10, 64)
	dir := sdkDir(t)
	c, err := clients.NewNamingClient(vo.NacosClientParam{
		ClientConfig: &constant.ClientConfig{
			Username: user, Password: password,
			TimeoutMs: 5000, NotLoadCacheAtStart: true, CacheDir: dir + "/cache", LogDir: dir + "/log", LogLevel: "error",
		},
		ServerConfigs: []constant.ServerConfig{{IpAddr: "127.0.0.1", Port: httpPort, GrpcPort: grpcPort}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func register(t *testing.T, c naming_client.INamingClient, ip string) {
	t.Helper()
	ok, err := c.RegisterInstance(vo.RegisterInstanceParam{
		Ip: ip, Port: 8080, ServiceName: "orders", Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
		Metadata: map[string]string{"version": "2"},
	})
	if err != nil || !ok {
		t.Fatalf("RegisterInstance %s: %v %v", ip, ok, err)
	}
}

// storeIPs lists the instances of orders as the registry holds them.
func storeIPs(n *registry.Node) []string {
	v, _ := n.Store().Get(registry.Key{Service: "orders"})
	var ips []string
	for _, in := range v.Instances {
		ips = append(ips, in.IP)
	}
	sort.Strings(ips)
	return ips
}

func hostIPs(hosts []model.Instance) []string {
	var ips []string
	for _, h := range hosts {
		ips = append(ips, h.Ip)
	}
	sort.Strings(ips)
	return ips
}

func eq(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestNacos2GRPCNaming drives the official Go SDK v2 through register,
// query, subscribe (with a push), deregister and the loss of a client's
// connection.
func TestNacos2GRPCNaming(t *testing.T) {
	n := startRegistry(t, registry.Options{})
	a, b, c := newClient(t, n), newClient(t, n), newClient(t, n)
	defer a.CloseClient()
	defer b.CloseClient()

	register(t, a, "127.0.0.11")
	if got := storeIPs(n); !eq(got, []string{"127.0.0.11"}) {
		t.Fatalf("store after register: %v", got)
	}

	// A query from another client sees the instance as registered.
	insts, err := b.SelectInstances(vo.SelectInstancesParam{ServiceName: "orders", HealthyOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 || insts[0].Ip != "127.0.0.11" || insts[0].Port != 8080 || insts[0].Metadata["version"] != "2" ||
		!insts[0].Healthy || !insts[0].Enable || insts[0].Weight != 1 || insts[0].ClusterName != "DEFAULT" {
		t.Fatalf("SelectInstances: %+v", insts)
	}

	// A subscriber is pushed the second instance when it registers.
	pushes := make(chan []string, 16)
	if err := b.Subscribe(&vo.SubscribeParam{ServiceName: "orders", SubscribeCallback: func(hosts []model.Instance, err error) {
		pushes <- hostIPs(hosts)
	}}); err != nil {
		t.Fatal(err)
	}
	register(t, c, "127.0.0.12")
	waitPush(t, pushes, []string{"127.0.0.11", "127.0.0.12"})

	// The service list names it.
	list, err := b.GetAllServicesInfo(vo.GetAllServiceInfoParam{PageNo: 1, PageSize: 10})
	if err != nil || list.Count != 1 || len(list.Doms) != 1 || list.Doms[0] != "orders" {
		t.Fatalf("GetAllServicesInfo: %+v %v", list, err)
	}

	// A deregistration is pushed too.
	ok, err := a.DeregisterInstance(vo.DeregisterInstanceParam{Ip: "127.0.0.11", Port: 8080, ServiceName: "orders", Ephemeral: true})
	if err != nil || !ok {
		t.Fatalf("DeregisterInstance: %v %v", ok, err)
	}
	if got := storeIPs(n); !eq(got, []string{"127.0.0.12"}) {
		t.Fatalf("store after deregister: %v", got)
	}
	waitPush(t, pushes, []string{"127.0.0.12"})

	// A client that goes away takes its ephemeral instances with it, at
	// once rather than after the heartbeat timeout.
	register(t, a, "127.0.0.13")
	waitPush(t, pushes, []string{"127.0.0.12", "127.0.0.13"})
	c.CloseClient()
	waitFor(t, 5*time.Second, "the closed client's instance to go", func() bool { return eq(storeIPs(n), []string{"127.0.0.13"}) })
	waitPush(t, pushes, []string{"127.0.0.13"})
}

// waitPush waits for a push that lists want; pushes of earlier states may
// come first.
func waitPush(t *testing.T, pushes <-chan []string, want []string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var seen [][]string
	for {
		select {
		case got := <-pushes:
			if eq(got, want) {
				return
			}
			seen = append(seen, got)
		case <-deadline:
			t.Fatalf("no push of %v within 10s (saw %v)", want, seen)
		}
	}
}

// TestNacos2GRPCAuth: with an admin token, a gRPC registration needs it
// (the SDK logs in with it as the password and sends the token it gets
// back in its payloads' headers); an anonymous client, even on loopback,
// registers nothing.
func TestNacos2GRPCAuth(t *testing.T) {
	n := startRegistry(t, registry.Options{AdminToken: "s3cret"})
	anon := newClient(t, n)
	defer anon.CloseClient()
	// The refusal comes back as a failed InstanceResponse, which the SDK
	// returns as false (an ErrorResponse would make it reconnect).
	ok, err := anon.RegisterInstance(vo.RegisterInstanceParam{Ip: "127.0.0.21", Port: 8080, ServiceName: "orders", Weight: 1, Enable: true, Healthy: true, Ephemeral: true})
	if ok {
		t.Fatalf("anonymous RegisterInstance: %v %v, want a refusal", ok, err)
	}
	if got := storeIPs(n); len(got) != 0 {
		t.Fatalf("store after a refused register: %v", got)
	}
	admin := newClientAs(t, n, "nacos", "s3cret")
	defer admin.CloseClient()
	register(t, admin, "127.0.0.22")
	if got := storeIPs(n); !eq(got, []string{"127.0.0.22"}) {
		t.Fatalf("store after an authorized register: %v", got)
	}
}

// TestNacos2GRPCBatchRegister: a batch registration registers every
// instance; a later batch of the same client replaces it, deregistering
// those it leaves out.
func TestNacos2GRPCBatchRegister(t *testing.T) {
	n := startRegistry(t, registry.Options{})
	c := newClient(t, n)
	defer c.CloseClient()
	inst := func(ip string) vo.RegisterInstanceParam {
		return vo.RegisterInstanceParam{Ip: ip, Port: 8080, Weight: 1, Enable: true, Healthy: true, Ephemeral: true}
	}
	ok, err := c.BatchRegisterInstance(vo.BatchRegisterInstanceParam{ServiceName: "orders", Instances: []vo.RegisterInstanceParam{inst("127.0.0.41"), inst("127.0.0.42")}})
	if err != nil || !ok {
		t.Fatalf("BatchRegisterInstance: %v %v", ok, err)
	}
	if got := storeIPs(n); !eq(got, []string{"127.0.0.41", "127.0.0.42"}) {
		t.Fatalf("store after the first batch: %v", got)
	}
	ok, err = c.BatchRegisterInstance(vo.BatchRegisterInstanceParam{ServiceName: "orders", Instances: []vo.RegisterInstanceParam{inst("127.0.0.42")}})
	if err != nil || !ok {
		t.Fatalf("second BatchRegisterInstance: %v %v", ok, err)
	}
	if got := storeIPs(n); !eq(got, []string{"127.0.0.42"}) {
		t.Fatalf("store after the second batch: %v", got)
	}
}
