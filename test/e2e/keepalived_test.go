package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/testnet"
)

// The keepalived pair's network: two nodes and a client on one bridge;
// keepalived moves kaVIP between the nodes' eth0.
const (
	kaSubnet = "10.253.1."
	kaVIP    = kaSubnet + "50"
)

// kaConf is the keepalived config of docs/l4.md's pair: VRRPv3 with a
// 200ms advertisement, the master the node with the higher priority, and a
// vrrp_script on strata's admin /healthz that puts a node whose strata
// does not answer in FAULT, which gives the VIP away at once.
func kaConf(name string, priority int) string {
	return fmt.Sprintf(`global_defs {
  router_id %s
  vrrp_version 3
  script_user root
  enable_script_security
}
vrrp_script strata {
  script "/usr/bin/curl -sf --max-time 0.5 -o /dev/null http://127.0.0.1:9901/healthz"
  interval 1
  timeout 1
  fall 1
  rise 1
}
vrrp_instance web {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int 0.2
  virtual_ipaddress {
    %s/24 dev eth0
  }
  track_script {
    strata
  }
}
`, name, priority, kaVIP)
}

type kaNode struct {
	name         string
	ns           *testnet.Netns
	dir          string
	strata, ka   *exec.Cmd
	sLogs, kLogs *lockedWriter
}

func (n *kaNode) startStrata(t *testing.T) {
	t.Helper()
	var b bytes.Buffer
	n.sLogs = &lockedWriter{w: &b}
	n.strata = n.ns.Cmd(strataBin, "run", "-c", filepath.Join(n.dir, "strata.yaml"))
	n.strata.Stdout, n.strata.Stderr = n.sLogs, n.sLogs
	if err := n.strata.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, logs := n.strata, n.sLogs
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("strata log of %s:\n%s", n.name, logText(logs))
		}
	})
}

func (n *kaNode) startKeepalived(t *testing.T) {
	t.Helper()
	var b bytes.Buffer
	n.kLogs = &lockedWriter{w: &b}
	n.ka = n.ns.Cmd("keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp", "--no-syslog",
		"-f", filepath.Join(n.dir, "keepalived.conf"),
		"-p", filepath.Join(n.dir, "keepalived.pid"), "-r", filepath.Join(n.dir, "vrrp.pid"))
	n.ka.Stdout, n.ka.Stderr = n.kLogs, n.kLogs
	// A group of its own, so that killing it kills its VRRP child too.
	n.ka.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.ka.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, logs := n.ka, n.kLogs
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("keepalived log of %s:\n%s", n.name, logText(logs))
		}
	})
}

// holdsVIP reports whether the node has the VIP on its eth0.
func (n *kaNode) holdsVIP() bool {
	out, _ := exec.Command("ip", "-n", n.ns.Name, "-4", "addr", "show", "dev", "eth0").Output()
	return strings.Contains(string(out), " "+kaVIP+"/")
}

// TestKeepalivedPair: two nodes run strata and keepalived; strata listens
// on the VIP (l4 on :80, l7 on :8080) before keepalived puts it anywhere,
// thanks to IP_FREEBIND. The master serves the client; when its strata
// dies the vrrp_script fails and the backup owns the VIP and serves
// within 4s; the master, restarted, takes the VIP back; when the master
// machine dies (keepalived and strata killed, its link down) the backup
// again owns the VIP and serves within 4s.
func TestKeepalivedPair(t *testing.T) {
	testnet.NeedRoot(t)
	testnet.NeedTool(t, "ip", "iproute2")
	testnet.NeedTool(t, "keepalived", "keepalived")
	testnet.NeedTool(t, "/usr/bin/curl", "curl")
	br := testnet.NewBridge(t, "ksw")
	client := br.Host(t, "kcl", "eth0", kaSubnet+"100/24")
	var nodes []*kaNode
	for i, prio := range []int{150, 100} {
		name := fmt.Sprintf("n%d", i+1)
		n := &kaNode{name: name, ns: br.Host(t, "k"+name, "eth0", fmt.Sprintf("%s%d/24", kaSubnet, 11+i)), dir: t.TempDir()}
		testnet.ServeNamed(t, n.ns, name, []string{"127.0.0.1:7000"}, nil)
		conf := fmt.Sprintf(`admin:
  listen: "127.0.0.1:9901"
shutdown_timeout: 1s
pools:
  - name: local
    backends:
      - {name: echo, address: "127.0.0.1:7000"}
l4:
  services:
    - {name: echo, listen: "%[1]s:80", pool: local}
l7:
  listeners:
    - listen: "%[1]s:8080"
      routes:
        - respond: {body: "%[2]s"}
`, kaVIP, name)
		for file, text := range map[string]string{"strata.yaml": conf, "keepalived.conf": kaConf(name, prio)} {
			if err := os.WriteFile(filepath.Join(n.dir, file), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, n)
	}
	n1, n2 := nodes[0], nodes[1]

	// strata first, with the VIP on neither node: it listens all the same.
	for _, n := range nodes {
		n.startStrata(t)
	}
	for _, n := range nodes {
		eventually(t, 15*time.Second, n.name+"'s strata to listen on the VIP", func() bool {
			s := logText(n.sLogs)
			return strings.Contains(s, "no interface holds this address yet: the service serves") &&
				strings.Contains(s, "no interface holds this address yet: the listener serves")
		})
	}
	if n1.holdsVIP() || n2.holdsVIP() {
		t.Fatal("a node holds the VIP before keepalived runs")
	}
	n1.startKeepalived(t)
	eventually(t, 10*time.Second, "n1 to become master", n1.holdsVIP)
	n2.startKeepalived(t)

	// served asks the VIP on both ports from the client and reports
	// whether the node name answered on both.
	served := func(name string) bool {
		out, err := exec.Command("ip", "netns", "exec", client.Name, "curl", "-s", "--max-time", "0.5", "http://"+kaVIP+":8080/").Output()
		if err != nil || string(out) != name {
			return false
		}
		var greeting string
		err = client.Do(func() error {
			c, err := net.DialTimeout("tcp", kaVIP+":80", 500*time.Millisecond)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(500 * time.Millisecond))
			greeting, err = testnet.ReadName(c)
			return err
		})
		return err == nil && greeting == name
	}
	eventually(t, 10*time.Second, "the client to be served by n1", func() bool { return served("n1") })

	failover := func(what string) {
		t.Helper()
		start := time.Now()
		eventually(t, 10*time.Second, "n2 to own the VIP and serve after "+what, func() bool { return n2.holdsVIP() && served("n2") })
		took := time.Since(start)
		t.Logf("after %s, n2 owned the VIP and served the client in %v", what, took.Round(10*time.Millisecond))
		if took > 4*time.Second {
			t.Errorf("after %s the backup took %v to serve, want within 4s", what, took)
		}
	}

	// The master's strata dies: its vrrp_script fails, keepalived goes to
	// FAULT and gives the VIP up.
	n1.strata.Process.Kill()
	n1.strata.Wait()
	failover("the master's strata was killed")
	if n1.holdsVIP() {
		t.Error("n1 still holds the VIP in FAULT")
	}

	// Back: n1's strata answers again, n1 (priority 150) takes the VIP back.
	n1.startStrata(t)
	eventually(t, 15*time.Second, "n1 to take the VIP back and serve", func() bool { return n1.holdsVIP() && !n2.holdsVIP() && served("n1") })

	// The master machine dies: nothing of it says goodbye.
	syscall.Kill(-n1.ka.Process.Pid, syscall.SIGKILL)
	n1.strata.Process.Kill()
	n1.ns.Run(t, "ip", "link", "set", "eth0", "down")
	failover("the master machine died")
}
