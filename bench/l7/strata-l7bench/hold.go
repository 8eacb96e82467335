package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// holdIdle is the client of bench/l7's idle-memory workload: it opens n
// keep-alive connections to addr, sends one GET on each and reads its
// response (so that every proxy has served a request and holds the
// connection as an idle keep-alive one, not as a fresh accept), prints
// "held N" and keeps them open until it is signalled. Connections come
// from 127.0.0.2–127.0.0.201 so that repeated runs of 10,000 connections
// never run out of ephemeral ports on one source address.
func holdIdle(addr string, n int) error {
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: strata-l7bench-hold\r\n\r\n")
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		d := net.Dialer{Timeout: 10 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%200))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return err
		}
		if _, err := c.Write(req); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("connection %d: status %d, %v", i, resp.StatusCode, err)
		}
		if err := c.SetDeadline(time.Time{}); err != nil {
			return err
		}
	}
	fmt.Printf("held %d\n", len(conns))
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
	return nil
}
