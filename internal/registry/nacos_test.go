package registry

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/clients"
	"github.com/nacos-group/nacos-sdk-go/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/common/constant"
	"github.com/nacos-group/nacos-sdk-go/model"
	"github.com/nacos-group/nacos-sdk-go/vo"
)

// TestNacosSDK drives strata with the official Nacos Go SDK v1.0.8,
// unchanged: register, list, select, subscribe, deregister.
func TestNacosSDK(t *testing.T) {
	n := startNode(t, Options{})
	host, port, _ := net.SplitHostPort(n.ID())
	p, _ := strconv.Atoi(port)
	dir := t.TempDir()
	nc, err := clients.NewNamingClient(vo.NacosClientParam{
		ClientConfig: &constant.ClientConfig{
			NamespaceId: "", TimeoutMs: 5000, NotLoadCacheAtStart: true, UpdateCacheWhenEmpty: true,
			CacheDir: dir + "/cache", LogDir: dir + "/log", LogLevel: "error",
		},
		ServerConfigs: []constant.ServerConfig{{IpAddr: host, Port: uint64(p)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, cl := range []string{"a", "a", "b"} {
		ok, err := nc.RegisterInstance(vo.RegisterInstanceParam{
			Ip: "127.0.0." + strconv.Itoa(i+1), Port: 8080, Weight: 10, Enable: true, Healthy: true,
			Ephemeral: true, ClusterName: cl, ServiceName: "orders", Metadata: map[string]string{"version": "1"},
		})
		if err != nil || !ok {
			t.Fatalf("register %d: %v %v", i, ok, err)
		}
	}
	v, ok := n.Store().Get(Key{Service: "orders"})
	if !ok || len(v.Instances) != 3 || v.Instances[0].Weight != 10 || v.Instances[0].Metadata["version"] != "1" {
		t.Fatalf("store after SDK registration: %+v", v)
	}

	all, err := nc.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: "orders"})
	if err != nil || len(all) != 3 {
		t.Fatalf("SelectAllInstances: %v %v", all, err)
	}
	inA, err := nc.SelectInstances(vo.SelectInstancesParam{ServiceName: "orders", Clusters: []string{"a"}, HealthyOnly: true})
	if err != nil || len(inA) != 2 {
		t.Fatalf("SelectInstances cluster a: %v %v", inA, err)
	}
	one, err := nc.SelectOneHealthyInstance(vo.SelectOneHealthInstanceParam{ServiceName: "orders"})
	if err != nil || one == nil || one.Port != 8080 {
		t.Fatalf("SelectOneHealthyInstance: %v %v", one, err)
	}
	list, err := nc.GetAllServicesInfo(vo.GetAllServiceInfoParam{PageNo: 1, PageSize: 10})
	if err != nil || list.Count != 1 || len(list.Doms) != 1 || list.Doms[0] != "orders" {
		t.Fatalf("GetAllServicesInfo: %+v %v", list, err)
	}

	var mu sync.Mutex
	var seen [][]model.SubscribeService
	err = nc.Subscribe(&vo.SubscribeParam{ServiceName: "orders", SubscribeCallback: func(s []model.SubscribeService, err error) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ok, err = nc.DeregisterInstance(vo.DeregisterInstanceParam{Ip: "127.0.0.3", Port: 8080, Cluster: "b", ServiceName: "orders", Ephemeral: true})
	if err != nil || !ok {
		t.Fatalf("deregister: %v %v", ok, err)
	}
	if v, _ := n.Store().Get(Key{Service: "orders"}); len(v.Instances) != 2 {
		t.Fatalf("after deregister: %d instances", len(v.Instances))
	}
	// The SDK polls every cacheMillis (1s) and calls back on a change.
	waitFor(t, 10*time.Second, "subscriber to see the deregistration", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && len(seen[len(seen)-1]) == 2
	})
	// The SDK's beat reactor keeps the registered instances alive.
	waitFor(t, 10*time.Second, "a heartbeat from the SDK", func() bool {
		return n.live.beatCount() >= 2
	})
}

// TestNacosSDKAccessToken: the official SDK logs in with a namespace's
// token as its password, gets it back as accessToken and sends it with
// every call (in the form body of POST and PUT), so it registers, beats
// and reads in a namespace that needs the token; an SDK with a wrong
// password registers nothing.
func TestNacosSDKAccessToken(t *testing.T) {
	n := startNode(t, Options{AdminToken: "adm", NamespaceTokens: map[string]string{"prod": "p-secret"}})
	host, port, _ := net.SplitHostPort(n.ID())
	p, _ := strconv.Atoi(port)
	sdk := func(password string) naming_client.INamingClient {
		dir := t.TempDir()
		nc, err := clients.NewNamingClient(vo.NacosClientParam{
			ClientConfig: &constant.ClientConfig{
				NamespaceId: "prod", TimeoutMs: 5000, NotLoadCacheAtStart: true, UpdateCacheWhenEmpty: true,
				CacheDir: dir + "/cache", LogDir: dir + "/log", LogLevel: "error",
				Username: "orders-app", Password: password,
			},
			ServerConfigs: []constant.ServerConfig{{IpAddr: host, Port: uint64(p)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	nc := sdk("p-secret")
	ok, err := nc.RegisterInstance(vo.RegisterInstanceParam{
		Ip: "127.0.0.1", Port: 8080, Weight: 1, Enable: true, Healthy: true, Ephemeral: true, ServiceName: "orders",
	})
	if err != nil || !ok {
		t.Fatalf("register with the namespace token: %v %v", ok, err)
	}
	if v, ok := n.Store().Get(Key{Namespace: "prod", Service: "orders"}); !ok || len(v.Instances) != 1 {
		t.Fatalf("store after the SDK's registration: %+v", v)
	}
	all, err := nc.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: "orders"})
	if err != nil || len(all) != 1 {
		t.Fatalf("SelectAllInstances: %v %v", all, err)
	}
	// The registration recorded a beat; a later one is the SDK's beat
	// reactor, which only passes with the token.
	lastBeat := func() int64 {
		n.live.mu.Lock()
		defer n.live.mu.Unlock()
		return n.live.beats[Key{Namespace: "prod", Group: DefaultGroup, Service: "orders"}]["127.0.0.1#8080#DEFAULT"]
	}
	registered := lastBeat()
	waitFor(t, 15*time.Second, "a heartbeat from the SDK", func() bool { return lastBeat() > registered })

	bad := sdk("wrong")
	if ok, err := bad.RegisterInstance(vo.RegisterInstanceParam{
		Ip: "127.0.0.2", Port: 8080, Weight: 1, Enable: true, Healthy: true, Ephemeral: true, ServiceName: "orders",
	}); err == nil && ok {
		t.Fatal("an SDK with a wrong password registered")
	}
	if v, _ := n.Store().Get(Key{Namespace: "prod", Service: "orders"}); len(v.Instances) != 1 {
		t.Fatalf("after the refused registration: %d instances", len(v.Instances))
	}
}
