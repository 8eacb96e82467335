package registry

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
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

	if typ, body := reg.call("LockOperationRequest", `{"requestId":"4"}`); typ != "ErrorResponse" || body["success"] == true || body["errorCode"] != float64(501) {
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

// next reads the next server request from the stream: its type and
// request ID.
func (c *nacosTestConn) next() (string, string) {
	c.t.Helper()
	var p nacosPayload
	if err := c.stream.RecvMsg(&p); err != nil {
		c.t.Fatalf("waiting for a server request: %v", err)
	}
	var head struct {
		RequestID string `json:"requestId"`
	}
	if err := json.Unmarshal(p.Body, &head); err != nil || head.RequestID == "" {
		c.t.Fatalf("server request %s without a request ID: %s", p.Type, p.Body)
	}
	return p.Type, head.RequestID
}

// answer acknowledges a server request, as the SDK does.
func (c *nacosTestConn) answer(typ, id string) {
	c.t.Helper()
	if err := c.stream.SendMsg(&nacosPayload{Type: typ, Body: []byte(`{"resultCode":200,"success":true,"requestId":"` + id + `"}`)}); err != nil {
		c.t.Fatalf("answering %s: %v", id, err)
	}
}

func registerOver(t *testing.T, c *nacosTestConn, ip string) {
	t.Helper()
	typ, body := c.call("InstanceRequest", `{"requestId":"r","serviceName":"orders","type":"registerInstance",
		"instance":{"ip":"`+ip+`","port":80,"weight":1,"healthy":true,"enabled":true,"ephemeral":true}}`)
	if typ != "InstanceResponse" || body["success"] != true {
		t.Fatalf("register %s: %s %v", ip, typ, body)
	}
}

// TestNacosGRPCPushRetried: a push the client does not answer is sent
// again with the same request ID; one it answered is not, and the next
// change is pushed under a new ID.
func TestNacosGRPCPushRetried(t *testing.T) {
	n := startNode(t, Options{NacosGRPC: "127.0.0.1:0", NacosGRPCIdle: time.Hour, NacosGRPCAckTimeout: 100 * time.Millisecond})
	sub, reg := dialNacos(t, n), dialNacos(t, n)
	if typ, body := sub.call("SubscribeServiceRequest", `{"requestId":"1","serviceName":"orders","subscribe":true}`); body["success"] != true {
		t.Fatalf("subscribe: %s %v", typ, body)
	}
	registerOver(t, reg, "127.0.0.31")
	typ, first := sub.next()
	if typ != "NotifySubscriberRequest" {
		t.Fatalf("first push: %s", typ)
	}
	// Unanswered, it comes again, at most maxPushRetries times.
	for i := 0; i < maxPushRetries; i++ {
		if typ, id := sub.next(); typ != "NotifySubscriberRequest" || id != first {
			t.Fatalf("resend %d: %s %s, want the push %s again", i, typ, id, first)
		}
	}
	registerOver(t, reg, "127.0.0.32")
	typ, second := sub.next()
	if typ != "NotifySubscriberRequest" || second == first {
		t.Fatalf("after the retries ran out: %s %s, want the next change's push", typ, second)
	}
	// Answered, it is not sent again: the next message is the next change.
	sub.answer("NotifySubscriberResponse", second)
	waitFor(t, 5*time.Second, "the answer to be taken", func() bool {
		n.grpc.mu.Lock()
		var conns []*nacosConn
		for c := range n.grpc.conns {
			conns = append(conns, c)
		}
		n.grpc.mu.Unlock()
		for _, c := range conns {
			c.mu.Lock()
			_, waiting := c.pending[second]
			c.mu.Unlock()
			if waiting {
				return false
			}
		}
		return true
	})
	registerOver(t, reg, "127.0.0.33")
	if typ, id := sub.next(); typ != "NotifySubscriberRequest" || id == second {
		t.Fatalf("after the answer: %s %s, want the next change's push", typ, id)
	}
}

// TestNacosGRPCClientDetection: an idle connection is asked whether its
// client is there; one that answers stays, one that does not is cut and
// its instance removed.
func TestNacosGRPCClientDetection(t *testing.T) {
	n := startNode(t, Options{NacosGRPC: "127.0.0.1:0", NacosGRPCIdle: 200 * time.Millisecond, NacosGRPCAckTimeout: 200 * time.Millisecond})
	alive, frozen := dialNacos(t, n), dialNacos(t, n)
	registerOver(t, alive, "127.0.0.41")
	registerOver(t, frozen, "127.0.0.42")
	var answered atomic.Int64
	go func() {
		for {
			var p nacosPayload
			if err := alive.stream.RecvMsg(&p); err != nil {
				return
			}
			var head struct {
				RequestID string `json:"requestId"`
			}
			json.Unmarshal(p.Body, &head)
			if p.Type == "ClientDetectionRequest" {
				answered.Add(1)
				alive.stream.SendMsg(&nacosPayload{Type: "ClientDetectionResponse", Body: []byte(`{"resultCode":200,"success":true,"requestId":"` + head.RequestID + `"}`)})
			}
		}
	}()
	waitFor(t, 10*time.Second, "the silent connection's instance to go", func() bool {
		v, _ := n.Store().Get(Key{Service: "orders"})
		return len(v.Instances) == 1 && v.Instances[0].IP == "127.0.0.41"
	})
	// The one that answers stays, through several detections.
	waitFor(t, 10*time.Second, "three detections answered", func() bool {
		if c := n.NacosGRPCConnections(); c != 1 {
			t.Fatalf("%d connections, want the one that answers", c)
		}
		return answered.Load() >= 3
	})
	if v, _ := n.Store().Get(Key{Service: "orders"}); len(v.Instances) != 1 {
		t.Fatalf("after the detections: %+v", v.Instances)
	}
}

// TestNacosGRPCConfig: publish (with a compare-and-set), query, listen
// and remove over the raw protocol; a change of a listened key is pushed
// as a ConfigChangeNotifyRequest naming the key as the client did, and
// resent until answered.
func TestNacosGRPCConfig(t *testing.T) {
	n := startNode(t, Options{NacosGRPC: "127.0.0.1:0", NacosGRPCIdle: time.Hour, NacosGRPCAckTimeout: 100 * time.Millisecond})
	lis, pub := dialNacos(t, n), dialNacos(t, n)
	const key = `"dataId":"app.yaml","group":"DEFAULT_GROUP","tenant":""`
	if typ, body := pub.call("ConfigQueryRequest", `{"requestId":"1",`+key+`}`); typ != "ConfigQueryResponse" || body["errorCode"] != float64(300) {
		t.Fatalf("query of nothing: %s %v", typ, body)
	}
	if typ, body := pub.call("ConfigPublishRequest", `{"requestId":"2",`+key+`,"content":"a: 1","additionMap":{"type":"yaml"}}`); typ != "ConfigPublishResponse" || body["success"] != true {
		t.Fatalf("publish: %s %v", typ, body)
	}
	md5 := ContentMD5("a: 1")
	typ, body := pub.call("ConfigQueryRequest", `{"requestId":"3",`+key+`}`)
	if typ != "ConfigQueryResponse" || body["content"] != "a: 1" || body["md5"] != md5 || body["contentType"] != "yaml" {
		t.Fatalf("query: %s %v", typ, body)
	}
	// Listening with the current md5: nothing changed.
	typ, body = lis.call("ConfigBatchListenRequest", `{"requestId":"4","listen":true,"configListenContexts":[{`+key+`,"md5":"`+md5+`"}]}`)
	if changed, _ := body["changedConfigs"].([]any); typ != "ConfigChangeBatchListenResponse" || body["success"] != true || len(changed) != 0 {
		t.Fatalf("listen: %s %v", typ, body)
	}
	// A compare-and-set against a stale md5 is refused.
	if typ, body := pub.call("ConfigPublishRequest", `{"requestId":"5",`+key+`,"content":"a: 2","casMd5":"`+ContentMD5("x")+`"}`); typ != "ConfigPublishResponse" || body["success"] == true || body["errorCode"] != float64(409) {
		t.Fatalf("stale compare-and-set: %s %v", typ, body)
	}
	if typ, body := pub.call("ConfigPublishRequest", `{"requestId":"6",`+key+`,"content":"a: 2","casMd5":"`+md5+`"}`); body["success"] != true {
		t.Fatalf("compare-and-set: %s %v", typ, body)
	}
	// The change is pushed, naming the key as the listener did (tenant
	// ""), and resent while unanswered.
	var p nacosPayload
	if err := lis.stream.RecvMsg(&p); err != nil || p.Type != "ConfigChangeNotifyRequest" {
		t.Fatalf("push: %s %v", p.Type, err)
	}
	var push map[string]any
	json.Unmarshal(p.Body, &push)
	if push["dataId"] != "app.yaml" || push["group"] != "DEFAULT_GROUP" || push["tenant"] != "" || push["requestId"] == "" {
		t.Fatalf("push: %s", p.Body)
	}
	typ, id := lis.next()
	if typ != "ConfigChangeNotifyRequest" || id != push["requestId"] {
		t.Fatalf("resend: %s %s, want %v again", typ, id, push["requestId"])
	}
	lis.answer("ConfigChangeNotifyResponse", id)
	// Listening with the old md5 reports the key changed.
	typ, body = lis.call("ConfigBatchListenRequest", `{"requestId":"7","listen":true,"configListenContexts":[{`+key+`,"md5":"`+md5+`"}]}`)
	if changed, _ := body["changedConfigs"].([]any); len(changed) != 1 {
		t.Fatalf("listen with a stale md5: %s %v", typ, body)
	}
	if typ, body := pub.call("ConfigRemoveRequest", `{"requestId":"8",`+key+`}`); typ != "ConfigRemoveResponse" || body["success"] != true {
		t.Fatalf("remove: %s %v", typ, body)
	}
	for {
		typ, id := lis.next()
		if typ != "ConfigChangeNotifyRequest" {
			t.Fatalf("after the removal: %s", typ)
		}
		if id != push["requestId"] {
			break // the removal's push (resends of the answered one may come first)
		}
	}
	if typ, body := pub.call("ConfigQueryRequest", `{"requestId":"9",`+key+`}`); body["errorCode"] != float64(300) {
		t.Fatalf("query after the removal: %s %v", typ, body)
	}
}
