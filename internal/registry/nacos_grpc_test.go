package registry

import (
	"net"
	"strings"
	"testing"
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
