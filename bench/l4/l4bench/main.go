// Command l4bench is the load generator and backend of bench/l4/run.sh:
//
//	l4bench echo  -tcp ADDR -udp ADDR        TCP and UDP echo backend
//	l4bench conns -addr ADDR -c N -d DUR     new TCP connections per second
//	l4bench udp   -addr ADDR -c N -d DUR     UDP datagrams relayed per second
//	l4bench idle  -addr ADDR -n N -pid PID   memory per idle connection
//
// Every loop is bounded by its duration; everything talks to loopback.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: l4bench echo|conns|udp|idle [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	tcpAddr := fs.String("tcp", "127.0.0.1:0", "echo: TCP listen address")
	udpAddr := fs.String("udp", "127.0.0.1:0", "echo: UDP listen address")
	addr := fs.String("addr", "", "address to load")
	conc := fs.Int("c", 32, "concurrent workers")
	dur := fs.Duration("d", 5*time.Second, "duration")
	n := fs.Int("n", 10000, "idle: connections to open")
	pid := fs.Int("pid", 0, "idle: process whose RSS is measured")
	hold := fs.Duration("hold", 0, "idle: how long to keep the connections open after measuring (to take profiles meanwhile)")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "echo":
		echo(*tcpAddr, *udpAddr)
	case "conns":
		conns(*addr, *conc, *dur)
	case "udp":
		udp(*addr, *conc, *dur)
	case "idle":
		idle(*addr, *n, *pid, *hold)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func echo(tcpAddr, udpAddr string) {
	ln, err := net.Listen("tcp", tcpAddr)
	check(err)
	pc, err := net.ListenPacket("udp", udpAddr)
	check(err)
	fmt.Printf("tcp %s udp %s\n", ln.Addr(), pc.LocalAddr())
	for range 2 {
		go func() {
			buf := make([]byte, 65536)
			for {
				n, a, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:n], a)
			}
		}()
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of descriptors under the idle test: wait for some to
			// close rather than die and take the backend away.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

// conns opens, uses (16 bytes each way) and closes connections as fast
// as conc workers can, for d.
func conns(addr string, conc int, d time.Duration) {
	var ok, failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := []byte("0123456789abcdef")
			buf := make([]byte, 16)
			for time.Now().Before(deadline) {
				c, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Write(msg); err == nil {
					_, err = io.ReadFull(c, buf)
					if err == nil {
						ok.Add(1)
					} else {
						failed.Add(1)
					}
				} else {
					failed.Add(1)
				}
				// Reset rather than FIN so the client side does not pile
				// up TIME_WAIT sockets and run out of ports.
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("conns_per_sec %.0f failed %d\n", float64(ok.Load())/d.Seconds(), failed.Load())
}

// udp sends a datagram and waits for its echo, on conc sockets, for d.
func udp(addr string, conc int, d time.Duration) {
	var ok, lost atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("udp", addr)
			if err != nil {
				lost.Add(1)
				return
			}
			defer c.Close()
			msg := make([]byte, 64)
			buf := make([]byte, 2048)
			for time.Now().Before(deadline) {
				c.SetDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := c.Write(msg); err != nil {
					lost.Add(1)
					continue
				}
				if _, err := c.Read(buf); err != nil {
					lost.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("datagrams_per_sec %.0f lost %d\n", float64(ok.Load())/d.Seconds(), lost.Load())
}

// idle opens n connections through addr, makes sure each carries a byte
// both ways, and reports how much the RSS of pid grew per connection.
func idle(addr string, n, pid int, hold time.Duration) {
	before := rss(pid)
	cs := make([]net.Conn, 0, n)
	buf := make([]byte, 1)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "idle: connection %d: %v\n", i, err)
			break
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte{'x'}); err == nil {
			io.ReadFull(c, buf)
		}
		cs = append(cs, c)
	}
	time.Sleep(2 * time.Second)
	after := rss(pid)
	fmt.Printf("idle_conns %d rss_before_kb %d rss_after_kb %d bytes_per_conn %.0f\n", len(cs), before, after, float64(after-before)*1024/float64(max(1, len(cs))))
	time.Sleep(hold)
	for _, c := range cs {
		c.Close()
	}
}

// rss returns the resident set of pid and its children in kB (nginx and
// HAProxy may run worker processes).
func rss(pid int) int64 {
	total := int64(0)
	pids := []int{pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
	}
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				f := strings.Fields(line)
				v, _ := strconv.ParseInt(f[1], 10, 64)
				total += v
			}
		}
	}
	return total
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
