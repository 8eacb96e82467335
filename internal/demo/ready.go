package demo

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/strata-lb/strata/internal/supervisor"
)

// waitReady waits until every app instance is registered and healthy, both
// l7 nodes have all of them in their pools, and a request gets through the
// VIP, so the printed commands work the moment they are printed.
func (d *demo) waitReady(sup *supervisor.Supervisor, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	want := len(d.setup.Apps)
	check := func() string {
		for _, p := range sup.Pools() {
			if p.Name() == "app" && len(p.Snapshot().Ready) < want {
				return fmt.Sprintf("the registry lists %d of %d app instances", len(p.Snapshot().Ready), want)
			}
		}
		for _, n := range d.setup.L7 {
			if got := readyIn(hc, n.Admin, "app"); got < want {
				return fmt.Sprintf("l7 node %s has %d of %d app instances ready", n.Name, got, want)
			}
		}
		res, err := hc.Get("http://" + d.setup.VIP + "/")
		if err != nil {
			return "the VIP: " + err.Error()
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return "the VIP answers " + res.Status
		}
		return ""
	}
	for {
		why := check()
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New(why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readyIn asks an admin listener how many backends of pool are ready.
func readyIn(hc *http.Client, admin, pool string) int {
	res, err := hc.Get("http://" + admin + "/api/v1/status")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	var st struct {
		Pools []struct {
			Name  string `json:"name"`
			Ready int    `json:"ready"`
		} `json:"pools"`
	}
	if json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&st) != nil {
		return 0
	}
	for _, p := range st.Pools {
		if p.Name == pool {
			return p.Ready
		}
	}
	return 0
}
