package registry

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestNacosGRPCPayloadRoundTrip checks the hand-written Payload encoding
// against itself, with headers and a JSON body, and that an empty message
// decodes to an empty payload.
func TestNacosGRPCPayloadRoundTrip(t *testing.T) {
	in := nacosPayload{Type: "InstanceRequest", ClientIP: "10.1.2.3", Headers: map[string]string{"accessToken": "t", "app": "x"}, Body: []byte(`{"a":1}`)}
	var out nacosPayload
	if err := out.unmarshal(in.marshal()); err != nil {
		t.Fatal(err)
	}
	if out.Type != in.Type || out.ClientIP != in.ClientIP || string(out.Body) != string(in.Body) ||
		len(out.Headers) != 2 || out.Headers["accessToken"] != "t" || out.Headers["app"] != "x" {
		t.Fatalf("round trip: %+v", out)
	}
	if err := out.unmarshal(nil); err != nil || out.Type != "" || out.Body != nil {
		t.Fatalf("empty: %+v %v", out, err)
	}
	if err := out.unmarshal([]byte{0x12, 0x05, 0x1a}); err == nil {
		t.Fatal("a truncated message decoded")
	}
}

// TestNacosGRPCDefaultPortTaken: at the config's default address a port
// in use is a warning, an address that was asked for is an error.
func TestNacosGRPCDefaultPortTaken(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	n := startNode(t, Options{NacosGRPC: busy.Addr().String(), NacosGRPCOptional: true})
	if a := n.NacosGRPCAddr(); a != nil {
		t.Fatalf("serving nacos grpc on %v, a port in use", a)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if n, err := Start(ln, Options{RaftAddr: "127.0.0.1:0", NacosGRPC: busy.Addr().String()}); err == nil || !strings.Contains(err.Error(), "nacos grpc") {
		if n != nil {
			n.Kill()
		}
		t.Fatalf("Start with a busy nacos grpc address: %v", err)
	}
}

// nacosTestConn is a raw gRPC client of the Nacos API, built on the
// server's own codec, so the root module tests the server with the gRPC
// version strata ships (test/compat runs the official SDK).
type nacosTestConn struct {
	t      *testing.T
	cc     *grpc.ClientConn
	stream grpc.ClientStream
}

func dialNacos(t *testing.T, n *Node) *nacosTestConn {
	t.Helper()
	cc, err := grpc.Dial(n.NacosGRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(nacosCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	c := &nacosTestConn{t: t, cc: cc}
	if typ, body := c.call("ServerCheckRequest", `{"requestId":"1"}`); typ != "ServerCheckResponse" || body["connectionId"] == "" || body["success"] != true {
		t.Fatalf("server check: %s %v", typ, body)
	}
	// The stream's deadline bounds every wait for a push.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c.stream, err = cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/BiRequestStream/requestBiStream")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.stream.SendMsg(&nacosPayload{Type: "ConnectionSetupRequest", Body: []byte(`{"clientVersion":"test","labels":{"module":"naming"}}`)}); err != nil {
		t.Fatal(err)
	}
	return c
}

// call sends one unary request and decodes the answer's JSON.
func (c *nacosTestConn) call(typ, body string) (string, map[string]any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var resp nacosPayload
	if err := c.cc.Invoke(ctx, "/Request/request", &nacosPayload{Type: typ, ClientIP: "203.0.113.9", Body: []byte(body)}, &resp); err != nil {
		c.t.Fatalf("%s: %v", typ, err)
	}
	var m map[string]any
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		c.t.Fatalf("%s: answer %q: %v", typ, resp.Body, err)
	}
	return resp.Type, m
}

// push reads the next push from the stream and returns its hosts' IPs
// and lastRefTime.
func (c *nacosTestConn) push() ([]string, float64) {
	c.t.Helper()
	var p nacosPayload
	if err := c.stream.RecvMsg(&p); err != nil {
		c.t.Fatalf("waiting for a push: %v", err)
	}
	var req struct {
		ServiceInfo struct {
			Hosts []struct {
				IP string `json:"ip"`
			} `json:"hosts"`
			LastRefTime float64 `json:"lastRefTime"`
		} `json:"serviceInfo"`
	}
	if p.Type != "NotifySubscriberRequest" || json.Unmarshal(p.Body, &req) != nil {
		c.t.Fatalf("push: %s %s", p.Type, p.Body)
	}
	var ips []string
	for _, h := range req.ServiceInfo.Hosts {
		ips = append(ips, h.IP)
	}
	return ips, req.ServiceInfo.LastRefTime
}

// TestNacosGRPCConnectionOwnsInstances: an instance registered over a
// connection is pushed to a subscriber, and removed (and the removal
// pushed) when that connection closes; lastRefTime only grows.
func TestNacosGRPCConnectionOwnsInstances(t *testing.T) {
	n := startNode(t, Options{NacosGRPC: "127.0.0.1:0", MaxParkedPerClient: 3})
	sub, reg := dialNacos(t, n), dialNacos(t, n)

	typ, body := sub.call("SubscribeServiceRequest", `{"requestId":"2","namespace":"public","serviceName":"orders","groupName":"DEFAULT_GROUP","subscribe":true}`)
	info, _ := body["serviceInfo"].(map[string]any)
	if typ != "SubscribeServiceResponse" || info == nil || info["name"] != "orders" || info["groupName"] != "DEFAULT_GROUP" {
		t.Fatalf("subscribe: %s %v", typ, body)
	}
	last, _ := info["lastRefTime"].(float64)
	// Namespace "" (the registration below) is "public" (the subscription).

	typ, body = reg.call("InstanceRequest", `{"requestId":"3","namespace":"","serviceName":"orders","groupName":"DEFAULT_GROUP","type":"registerInstance",
		"instance":{"ip":"127.0.0.31","port":80,"weight":1,"healthy":true,"enabled":true,"ephemeral":true}}`)
	if typ != "InstanceResponse" || body["success"] != true || body["requestId"] != "3" {
		t.Fatalf("register: %s %v", typ, body)
	}
	ips, ref := sub.push()
	if len(ips) != 1 || ips[0] != "127.0.0.31" || ref <= last {
		t.Fatalf("push after register: %v at %v (last %v)", ips, ref, last)
	}
	last = ref

	if typ, body := reg.call("ConfigQueryRequest", `{"requestId":"4"}`); typ != "ErrorResponse" || body["success"] == true || body["errorCode"] != float64(501) {
		t.Fatalf("unknown request: %s %v", typ, body)
	}

	// A connection's subscriptions are bounded.
	for i := 0; ; i++ {
		typ, body := reg.call("SubscribeServiceRequest", `{"serviceName":"s`+strconv.Itoa(i)+`","subscribe":true}`)
		if typ != "SubscribeServiceResponse" {
			t.Fatalf("subscription %d answered %s %v", i, typ, body)
		}
		if body["success"] != true {
			if body["errorCode"] != float64(429) || i != 3 {
				t.Fatalf("subscription %d refused with %v", i, body)
			}
			break
		}
		if i > 3 {
			t.Fatal("more subscriptions than max_watchers_per_client")
		}
	}

	reg.cc.Close()
	waitFor(t, 5*time.Second, "the closed connection's instance to go", func() bool {
		v, _ := n.Store().Get(Key{Service: "orders"})
		return len(v.Instances) == 0
	})
	ips, ref = sub.push()
	if len(ips) != 0 || ref <= last {
		t.Fatalf("push after the connection closed: %v at %v (last %v)", ips, ref, last)
	}
}
