package testnet

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace made for one test, named with the test
// process's pid so that parallel runs never collide. Do runs Go code in
// it: a socket made inside Do stays in the namespace for its whole life,
// whichever goroutine uses it later.
type Netns struct {
	Name string
	once sync.Once
	work chan func()
}

// NewNetns creates the namespace prefix+pid+suffix and deletes it (and
// so every interface in it) when the test ends. It needs root and ip(8).
func NewNetns(t testing.TB, suffix string) *Netns {
	t.Helper()
	name := fmt.Sprintf("st%d%s", os.Getpid(), suffix)
	Run(t, "", "ip", "netns", "add", name)
	ns := &Netns{Name: name, work: make(chan func())}
	t.Cleanup(func() {
		ns.once.Do(func() {})
		close(ns.work)
		exec.Command("ip", "netns", "del", name).Run()
	})
	return ns
}

// Do runs fn on an OS thread that has entered the namespace. The thread
// is never handed back to the Go scheduler: the worker goroutine keeps it
// locked until the namespace is deleted, and then it exits with it.
func (ns *Netns) Do(fn func() error) error {
	ns.once.Do(func() {
		ready := make(chan error)
		go func() {
			runtime.LockOSThread()
			f, err := os.Open("/var/run/netns/" + ns.Name)
			if err == nil {
				err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
				f.Close()
			}
			ready <- err
			if err != nil {
				return
			}
			for fn := range ns.work {
				fn()
			}
		}()
		if err := <-ready; err != nil {
			panic(fmt.Sprintf("entering netns %s: %v", ns.Name, err))
		}
	})
	done := make(chan error, 1)
	ns.work <- func() { done <- fn() }
	return <-done
}

// Run runs a command in the namespace and fails the test when it fails.
func (ns *Netns) Run(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, ns.Name, args...)
}

// Cmd returns a command that runs in the namespace.
func (ns *Netns) Cmd(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name}, args...)...)
}

// Run runs a command, in the namespace ns unless ns is empty, and fails
// the test with its output when it fails.
func Run(t testing.TB, ns string, args ...string) string {
	t.Helper()
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Bridge is a Linux bridge in a namespace of its own: a switch the test's
// hosts plug into.
type Bridge struct {
	ns *Netns
	n  int
}

// NewBridge makes a namespace holding the bridge br0.
func NewBridge(t testing.TB, suffix string) *Bridge {
	t.Helper()
	ns := NewNetns(t, suffix)
	ns.Run(t, "ip", "link", "add", "br0", "type", "bridge")
	ns.Run(t, "ip", "link", "set", "br0", "up")
	return &Bridge{ns: ns}
}

// Plug joins host to the bridge with a veth pair whose host end is dev,
// and brings dev and the host's loopback up.
func (b *Bridge) Plug(t testing.TB, host *Netns, dev string) {
	t.Helper()
	b.n++
	port := fmt.Sprintf("p%d", b.n)
	b.ns.Run(t, "ip", "link", "add", port, "type", "veth", "peer", "name", dev, "netns", host.Name)
	b.ns.Run(t, "ip", "link", "set", port, "master", "br0", "up")
	host.Run(t, "ip", "link", "set", dev, "up")
	host.Run(t, "ip", "link", "set", "lo", "up")
}

// Host makes the namespace prefix+pid+suffix, plugs it into the bridge
// as dev (NewNetns, then Plug) and gives dev the addresses addrs.
func (b *Bridge) Host(t testing.TB, suffix, dev string, addrs ...string) *Netns {
	t.Helper()
	ns := NewNetns(t, suffix)
	b.Plug(t, ns, dev)
	ns.AddAddrs(t, dev, addrs...)
	return ns
}

// AddAddrs adds each address (in CIDR form) to dev. IPv6 ones skip
// duplicate address detection, so that they are usable at once instead
// of tentative for a second or two.
func (ns *Netns) AddAddrs(t testing.TB, dev string, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		args := []string{"ip", "addr", "add", a, "dev", dev}
		if strings.Contains(a, ":") {
			args = append(args, "nodad")
		}
		ns.Run(t, args...)
	}
}

// Link joins two namespaces with a veth pair, devA in a and devB in b,
// both up.
func Link(t testing.TB, a *Netns, devA string, b *Netns, devB string) {
	t.Helper()
	a.Run(t, "ip", "link", "add", devA, "type", "veth", "peer", "name", devB, "netns", b.Name)
	a.Run(t, "ip", "link", "set", devA, "up")
	b.Run(t, "ip", "link", "set", devB, "up")
	a.Run(t, "ip", "link", "set", "lo", "up")
	b.Run(t, "ip", "link", "set", "lo", "up")
}

// NamedServer is the real server of a namespace's real-server role: a
// named echo (its name and a line end, then every byte echoed) on each
// echo address and a plain HTTP server answering its name on each HTTP
// address. Close stops one listener while its connections go on, as a
// server that stops accepting would.
type NamedServer struct {
	lns map[string]net.Listener
}

// ServeNamed starts a NamedServer in ns; each address is host:port as
// net.Listen takes it. Everything stops with the test.
func ServeNamed(t testing.TB, ns *Netns, name string, echo, web []string) *NamedServer {
	t.Helper()
	s := &NamedServer{lns: map[string]net.Listener{}}
	listen := func(addr string) net.Listener {
		var ln net.Listener
		if err := ns.Do(func() (err error) {
			ln, err = net.Listen("tcp", addr)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		s.lns[addr] = ln
		return ln
	}
	for _, addr := range echo {
		go ServeNamedEcho(listen(addr), name)
	}
	for _, addr := range web {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })}
		go srv.Serve(listen(addr))
		t.Cleanup(func() { srv.Close() })
	}
	return s
}

// Close stops accepting on addr.
func (s *NamedServer) Close(addr string) { s.lns[addr].Close() }
