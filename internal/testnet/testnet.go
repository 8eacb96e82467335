// Package testnet holds the small real servers that tests of several
// packages start on loopback.
package testnet

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
)

// ReadName reads the line a named echo greets a connection with, and
// returns the name. TCP may deliver the line in pieces (one run read "p"
// of "primary\n" alone), so it reads to the line end, not one Read.
func ReadName(c net.Conn) (string, error) {
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// NamedEcho is a real TCP server on 127.0.0.1: it writes its name and a
// line end to each connection, then echoes what it reads until the client
// half-closes, then closes. It stops with the test.
func NamedEcho(t testing.TB, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go ServeNamedEcho(ln, name)
	return ln.Addr().String()
}

// ServeNamedEcho is the named echo on a listener the caller made (in a
// namespace, on a fixed port): for each connection it writes name and a
// line end, then echoes what it reads until the client half-closes. It
// returns when ln is closed.
func ServeNamedEcho(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.WriteString(c, name+"\n")
			io.Copy(c, c)
		}()
	}
}

// UDPEcho is a real UDP server on 127.0.0.1 that answers every datagram
// with prefix and the datagram. It stops with the test.
func UDPEcho(t testing.TB, prefix string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte(prefix), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().String()
}
