package sockopt

import (
	"net"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// TestListenFreebind: a listener binds an address no interface holds,
// which a plain net.Listen refuses, and Nonlocal says so; in a namespace
// of its own it serves the moment the address is added.
func TestListenFreebind(t *testing.T) {
	const addr = "192.0.2.77:0" // TEST-NET-1: on no interface here
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Skip("this machine binds non-local addresses anyway (net.ipv4.ip_nonlocal_bind=1)")
	}
	ln, err := Listen("tcp", addr)
	if err != nil {
		t.Fatalf("Listen(%s) with IP_FREEBIND: %v", addr, err)
	}
	ln.Close()
	pc, err := ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("ListenPacket(%s) with IP_FREEBIND: %v", addr, err)
	}
	pc.Close()
	for _, c := range []struct {
		addr string
		want bool
	}{{"192.0.2.77:80", true}, {"127.0.0.1:80", false}, {"0.0.0.0:80", false}, {"[::]:80", false}, {"localhost:80", false}} {
		if got := Nonlocal(c.addr); got != c.want {
			t.Errorf("Nonlocal(%s) = %v, want %v", c.addr, got, c.want)
		}
	}

	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	ns := testnet.NewNetns(t, "fb")
	ns.Run(t, "ip", "link", "set", "lo", "up")
	const vip = "10.99.0.1:8080"
	var l net.Listener
	if err := ns.Do(func() (err error) {
		l, err = Listen("tcp", vip)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("up"))
			c.Close()
		}
	}()
	ns.Run(t, "ip", "addr", "add", "10.99.0.1/32", "dev", "lo")
	if err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp", vip, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 2)
		_, err = c.Read(b)
		return err
	}); err != nil {
		t.Fatalf("the listener did not serve once the address was added: %v", err)
	}
}
