package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/clients"
	"github.com/nacos-group/nacos-sdk-go/common/constant"
	"github.com/nacos-group/nacos-sdk-go/vo"
	"github.com/strata-lb/strata/internal/testnet"
)

// startRegistry runs the one-liner and waits until the node serves.
func startRegistry(t *testing.T, listen, raft, data string, join ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	args := []string{"registry", "--listen", listen, "--raft", raft, "--data", data}
	for _, j := range join {
		args = append(args, "--join", j)
	}
	return startRegistryArgs(t, listen, args)
}

// startRegistryArgs runs strata with args and waits until the registry
// on listen serves.
func startRegistryArgs(t *testing.T, listen string, args []string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(strataBin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("strata %s output:\n%s", listen, out.String())
		}
	})
	eventually(t, 10*time.Second, "registry to serve on "+listen, func() bool {
		return strings.Contains(out.String(), "registry serving")
	})
	return cmd, out
}

type clusterState struct {
	Leader  string `json:"leader"`
	State   string `json:"state"`
	Members []any  `json:"members"`
}

func cluster(addr string) (clusterState, error) {
	var c clusterState
	resp, err := http.Get("http://" + addr + "/v1/registry/cluster")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	return c, json.NewDecoder(resp.Body).Decode(&c)
}

func curl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testnet.NeedTool(t, "curl", "curl"), append([]string{"-sS", "--fail-with-body"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestRegistryClusterOneLiners runs three `strata registry` processes,
// registers with curl and the Nacos SDK through followers, kills the
// leader with SIGKILL and checks that a new leader serves within 5 s with
// every registration.
func TestRegistryClusterOneLiners(t *testing.T) {
	testnet.NeedTool(t, "curl", "curl")
	dir := t.TempDir()
	var http_, raft []string
	for i := 0; i < 3; i++ {
		http_ = append(http_, freePort(t))
		raft = append(raft, freePort(t))
	}
	procs := make([]*exec.Cmd, 3)
	procs[0], _ = startRegistry(t, http_[0], raft[0], filepath.Join(dir, "0"))
	for i := 1; i < 3; i++ {
		procs[i], _ = startRegistry(t, http_[i], raft[i], filepath.Join(dir, strconv.Itoa(i)), http_[0])
	}
	eventually(t, 15*time.Second, "a cluster of three", func() bool {
		c, err := cluster(http_[2])
		return err == nil && len(c.Members) == 3 && c.Leader != ""
	})

	// curl through a follower: the write is forwarded to the leader.
	curl(t, "-X", "PUT", "http://"+http_[1]+"/v1/registry/instances", "-d", `{"service":"web","ip":"127.0.0.1","port":80,"ephemeral":false}`)
	// The Nacos SDK through the other follower.
	host, port, _ := net.SplitHostPort(http_[2])
	p, _ := strconv.Atoi(port)
	nc, err := clients.NewNamingClient(vo.NacosClientParam{
		ClientConfig:  &constant.ClientConfig{TimeoutMs: 5000, NotLoadCacheAtStart: true, CacheDir: filepath.Join(dir, "nc"), LogDir: filepath.Join(dir, "nl"), LogLevel: "error"},
		ServerConfigs: []constant.ServerConfig{{IpAddr: host, Port: uint64(p)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := nc.RegisterInstance(vo.RegisterInstanceParam{Ip: "127.0.0.2", Port: 80, Weight: 1, Enable: true, Healthy: true, Ephemeral: true, ServiceName: "web"}); !ok || err != nil {
		t.Fatalf("nacos register: %v %v", ok, err)
	}

	c, _ := cluster(http_[0])
	li := -1
	for i, a := range http_ {
		if a == c.Leader {
			li = i
		}
	}
	if li < 0 {
		t.Fatalf("leader %q is none of %v", c.Leader, http_)
	}
	killed := time.Now()
	procs[li].Process.Signal(syscall.SIGKILL)
	procs[li].Wait()
	other := http_[(li+1)%3]
	eventually(t, 5*time.Second, "a new leader", func() bool {
		c, err := cluster(other)
		return err == nil && c.Leader != "" && c.Leader != http_[li]
	})
	t.Logf("new leader after %v", time.Since(killed).Round(time.Millisecond))
	// Reads are served from each node's own store, which applies an entry
	// once it learns the entry is committed: a registration acknowledged
	// just before the kill shows up as soon as the new leader commits in
	// its term.
	var out string
	eventually(t, 5*time.Second, "both registrations on "+other, func() bool {
		out = curl(t, "http://"+other+"/v1/registry/services/public/DEFAULT_GROUP/web?healthy=false")
		return strings.Contains(out, "127.0.0.1") && strings.Contains(out, "127.0.0.2")
	})
	// SIGTERM stops a node cleanly.
	last := procs[(li+2)%3]
	last.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- last.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}
