package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// strata: its own HTTP API. Workers share one connection pool, as the
// goroutines of one process do; each subscriber has a transport (a
// connection) of its own.
type strataSys struct{}

var strataHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxIdleConns: 4096}, Timeout: 60 * time.Second}

func (strataSys) prepare([]string) error { return nil }

func (strataSys) worker(w int) (client, error) {
	c := &strataClient{hc: strataHTTP}
	if w >= 1000 { // a subscriber: a connection of its own
		c.hc = &http.Client{Transport: &http.Transport{}, Timeout: 60 * time.Second}
	}
	return c, nil
}

type strataClient struct {
	hc *http.Client
	// beatConn and beatReq: beat speaks HTTP/1.1 itself on a connection
	// of its own, as beat does ZooKeeper's ping, so that the load
	// generator's own cost per heartbeat is as small for both.
	beatConn net.Conn
	beatRd   *bufio.Reader
	beatReq  []byte
}

func (c *strataClient) do(method, url string, body []byte) ([]byte, http.Header, error) {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return b, resp.Header, fmt.Errorf("%s %s: %s %s", method, url, resp.Status, b)
	}
	return b, resp.Header, err
}

func (c *strataClient) register(svc string, i int) error {
	b, _ := json.Marshal(map[string]any{"service": svc, "ip": ip(i), "port": 80})
	_, _, err := c.do("PUT", "http://"+*addr+"/v1/registry/instances", b)
	return err
}

func (c *strataClient) beatSetup(svc string, i int) error {
	body, _ := json.Marshal(map[string]any{"service": svc, "ip": ip(i), "port": 80})
	c.beatReq = fmt.Appendf(nil, "PUT /v1/registry/beat HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", *addr, len(body), body)
	conn, err := net.DialTimeout("tcp", *addr, 10*time.Second)
	if err != nil {
		return err
	}
	c.beatConn, c.beatRd = conn, bufio.NewReader(conn)
	return c.register(svc, i)
}

// beat sends one heartbeat request and reads its answer.
func (c *strataClient) beat() error {
	if _, err := c.beatConn.Write(c.beatReq); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.beatRd, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("beat: %s", resp.Status)
	}
	return err
}

// get asks for the healthy instances of svc after index (0: at once).
func (c *strataClient) get(ctx context.Context, svc string, index uint64) (uint64, int, error) {
	url := "http://" + *addr + "/v1/registry/services/public/DEFAULT_GROUP/" + svc
	if index > 0 {
		url += "?wait=30s&index=" + strconv.FormatUint(index, 10)
	}
	b, h, err := c.do("GET", url, nil)
	if err != nil {
		return 0, 0, err
	}
	idx, _ := strconv.ParseUint(h.Get("X-Strata-Index"), 10, 64)
	var v struct{ Instances []json.RawMessage }
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, 0, err
	}
	return idx, len(v.Instances), nil
}

func (c *strataClient) query(svc string) (int, error) {
	_, k, err := c.get(context.Background(), svc, 0)
	return k, err
}

// subscribe opens a streaming watch (GET /v1/registry/watch/…): the
// server writes the current answer as one JSON line, then one line after
// every change, on the open connection, as etcd's watch stream and a
// ZooKeeper watch do.
func (c *strataClient) subscribe(svc string, fn, armed func()) error {
	req, _ := http.NewRequest("GET", "http://"+*addr+"/v1/registry/watch/public/DEFAULT_GROUP/"+svc, nil)
	hc := &http.Client{Transport: c.hc.Transport} // no timeout: the stream lasts
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return fmt.Errorf("watch %s: %s %s", svc, resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	if !sc.Scan() {
		resp.Body.Close()
		return fmt.Errorf("watch %s: no first answer: %v", svc, sc.Err())
	}
	armed()
	go func() {
		defer resp.Body.Close()
		for sc.Scan() {
			fn()
			armed() // the stream stays open
		}
	}()
	return nil
}

func (c *strataClient) close() {
	if c.beatConn != nil {
		c.beatConn.Close()
	}
}
