// Package testnet holds the small real servers that tests of several
// packages start on loopback.
package testnet

import (
	"io"
	"net"
	"testing"
)

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
	go func() {
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
	}()
	return ln.Addr().String()
}
