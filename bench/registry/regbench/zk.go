package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/go-zookeeper/zk"
)

// ZooKeeper: how Dubbo registers: an ephemeral znode per instance under the
// service's node, getChildren, a child watch (one-shot: re-armed by the
// next getChildren). Each worker and each subscriber has a session (a
// connection) of its own.
type zkSys struct{}

const zkRoot = "/strata-bench"

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// zkConnect opens a session and waits until the server has granted it,
// so that no timed call pays for the handshake.
func zkConnect() (*zk.Conn, error) {
	c, ev, err := zk.Connect([]string{*addr}, 30*time.Second, zk.WithLogger(nopLogger{}))
	if err != nil {
		return nil, err
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.State == zk.StateHasSession {
				// The event channel must keep being read or the client blocks.
				go func() {
					for range ev {
					}
				}()
				return c, nil
			}
		case <-deadline:
			c.Close()
			return nil, fmt.Errorf("zk: no session with %s in 30s", *addr)
		}
	}
}

func (zkSys) prepare(svcs []string) error {
	c, err := zkConnect()
	if err != nil {
		return err
	}
	defer c.Close()
	for _, p := range append([]string{zkRoot}, prefixAll(svcs)...) {
		if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("creating %s: %w", p, err)
		}
	}
	return nil
}

func prefixAll(svcs []string) []string {
	ps := make([]string, len(svcs))
	for i, s := range svcs {
		ps[i] = zkRoot + "/" + s
	}
	return ps
}

func (zkSys) worker(int) (client, error) {
	c, err := zkConnect()
	if err != nil {
		return nil, err
	}
	return &zkClient{c: c}, nil
}

type zkClient struct {
	c    *zk.Conn
	ping net.Conn // a raw session for beat
	buf  [20]byte
}

func (c *zkClient) register(svc string, i int) error {
	v, _ := json.Marshal(map[string]any{"ip": ip(i), "port": 80})
	_, err := c.c.Create(zkRoot+"/"+svc+"/"+ip(i)+":80", v, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
	return err
}

// beatSetup opens a session of its own on a raw connection: the Go client
// pings only when idle (every third of the session timeout), so beat
// speaks the protocol itself to send one ping per call.
func (c *zkClient) beatSetup(string, int) error {
	conn, err := net.DialTimeout("tcp", *addr, 10*time.Second)
	if err != nil {
		return err
	}
	// ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId,
	// passwd (16 bytes), readOnly; length-prefixed.
	req := make([]byte, 4+4+8+4+8+4+16+1)
	binary.BigEndian.PutUint32(req[0:], uint32(len(req)-4))
	binary.BigEndian.PutUint32(req[16:], 30000)
	binary.BigEndian.PutUint32(req[28:], 16)
	if _, err := conn.Write(req); err != nil {
		return err
	}
	var l [4]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return fmt.Errorf("zk handshake: %w", err)
	}
	resp := make([]byte, binary.BigEndian.Uint32(l[:]))
	if _, err := io.ReadFull(conn, resp); err != nil {
		return fmt.Errorf("zk handshake: %w", err)
	}
	if len(resp) < 16 || binary.BigEndian.Uint64(resp[8:]) == 0 {
		return fmt.Errorf("zk handshake: no session")
	}
	c.ping = conn
	return nil
}

// beat sends one ping (xid -2, opcode 11) and reads its reply.
func (c *zkClient) beat() error {
	var p [12]byte
	binary.BigEndian.PutUint32(p[0:], 8)
	binary.BigEndian.PutUint32(p[4:], 0xfffffffe)
	binary.BigEndian.PutUint32(p[8:], 11)
	if _, err := c.ping.Write(p[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(c.ping, c.buf[:]); err != nil {
		return err
	}
	if xid := int32(binary.BigEndian.Uint32(c.buf[4:])); xid != -2 {
		return fmt.Errorf("zk ping: reply xid %d", xid)
	}
	if e := int32(binary.BigEndian.Uint32(c.buf[16:])); e != 0 {
		return fmt.Errorf("zk ping: error %d", e)
	}
	return nil
}

func (c *zkClient) query(svc string) (int, error) {
	ch, _, err := c.c.Children(zkRoot + "/" + svc)
	return len(ch), err
}

func (c *zkClient) subscribe(svc string, fn, armed func()) error {
	p := zkRoot + "/" + svc
	_, _, ev, err := c.c.ChildrenW(p)
	if err != nil {
		return err
	}
	armed()
	go func() {
		for {
			e := <-ev
			if e.Type == zk.EventNodeChildrenChanged {
				fn()
			}
			for {
				_, _, ev, err = c.c.ChildrenW(p)
				if err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			armed()
		}
	}()
	return nil
}

func (c *zkClient) close() {
	c.c.Close()
	if c.ping != nil {
		c.ping.Close()
	}
}
