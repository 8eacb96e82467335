package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/raft"
)

// The linearizability check: concurrent clients register, deregister and
// read (with ?consistent) instances on a three-node cluster while the
// leader is killed and restarted, a follower is paused, and Raft links are
// cut and healed. The history they record is checked with porcupine
// against a sequential set of instances per service.
//
// Faults are injected in process: faultNet wraps each node's Raft stream
// layer and its HTTP listener. A cut link refuses dials and closes the
// link's connections (a partition: Raft's messages are lost); a paused
// node's reads and writes stall, on Raft and HTTP alike, which is what its
// peers and clients see of a SIGSTOPped process (its timers still run).
// Forwarding between nodes' HTTP APIs is not cut: a forwarded write still
// needs a quorum through Raft, which is what the check is about.
//
// Default (in make test) runs one round of the fault schedule, about 10 s;
// STRATA_LIN_ROUNDS=N runs N rounds.

// faultNet is the network between the nodes of one test.
type faultNet struct {
	mu     sync.Mutex
	cond   *sync.Cond
	addrs  map[string]int // Raft address → node
	cut    map[[2]int]bool
	paused map[int]bool
	conns  map[*faultConn]struct{}
}

var errCut = errors.New("faultnet: link cut")

func newFaultNet() *faultNet {
	f := &faultNet{addrs: map[string]int{}, cut: map[[2]int]bool{}, paused: map[int]bool{}, conns: map[*faultConn]struct{}{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// stall blocks while node i is paused.
func (f *faultNet) stall(i int) {
	f.mu.Lock()
	for f.paused[i] {
		f.cond.Wait()
	}
	f.mu.Unlock()
}

func (f *faultNet) isCut(a, b int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut[[2]int{a, b}]
}

// setCut cuts (or heals) the link between a and b, both ways, closing
// its connections.
func (f *faultNet) setCut(a, b int, cut bool) {
	f.mu.Lock()
	f.cut[[2]int{a, b}], f.cut[[2]int{b, a}] = cut, cut
	var doomed []*faultConn
	if cut {
		for c := range f.conns {
			if (c.self == a && c.peer == b) || (c.self == b && c.peer == a) {
				doomed = append(doomed, c)
			}
		}
	}
	f.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

func (f *faultNet) pause(i int, p bool) {
	f.mu.Lock()
	f.paused[i] = p
	f.mu.Unlock()
	f.cond.Broadcast()
}

// healAll heals every link and resumes every node.
func (f *faultNet) healAll() {
	f.mu.Lock()
	f.cut = map[[2]int]bool{}
	f.paused = map[int]bool{}
	f.mu.Unlock()
	f.cond.Broadcast()
}

// faultConn is one end of a connection, held by node self; peer is the
// node it dialled, or -1 for an accepted connection (the dialling end
// enforces cuts for both).
type faultConn struct {
	net.Conn
	f          *faultNet
	self, peer int
}

func (c *faultConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.f.stall(c.self)
	return n, err
}

func (c *faultConn) Write(b []byte) (int, error) {
	c.f.stall(c.self)
	if c.peer >= 0 && c.f.isCut(c.self, c.peer) {
		c.Conn.Close()
		return 0, errCut
	}
	return c.Conn.Write(b)
}

func (c *faultConn) Close() error {
	c.f.mu.Lock()
	delete(c.f.conns, c)
	c.f.mu.Unlock()
	return c.Conn.Close()
}

func (f *faultNet) wrap(c net.Conn, self, peer int) *faultConn {
	fc := &faultConn{Conn: c, f: f, self: self, peer: peer}
	f.mu.Lock()
	f.conns[fc] = struct{}{}
	f.mu.Unlock()
	return fc
}

// faultStream is node self's Raft stream layer.
type faultStream struct {
	raft.StreamLayer
	f    *faultNet
	self int
}

func (s *faultStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	s.f.mu.Lock()
	peer, ok := s.f.addrs[string(address)]
	s.f.mu.Unlock()
	if !ok {
		peer = -1
	}
	s.f.stall(s.self)
	if peer >= 0 && s.f.isCut(s.self, peer) {
		return nil, errCut
	}
	c, err := s.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	return s.f.wrap(c, s.self, peer), nil
}

func (s *faultStream) Accept() (net.Conn, error) {
	c, err := s.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return s.f.wrap(c, s.self, -1), nil
}

// faultListener is node self's HTTP listener: its connections stall while
// the node is paused.
type faultListener struct {
	net.Listener
	f    *faultNet
	self int
}

func (l *faultListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.f.wrap(c, l.self, -1), nil
}

// linCluster is three nodes on loopback behind one faultNet.
type linCluster struct {
	t     *testing.T
	f     *faultNet
	http  []string
	raft  []string
	dirs  []string
	mu    sync.Mutex
	nodes []*Node
}

func (c *linCluster) start(i int, join []string) {
	t := c.t
	t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		// A port just freed by a killed node may linger briefly.
		if ln, err = net.Listen("tcp", c.http[i]); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(&faultListener{Listener: ln, f: c.f, self: i}, Options{
		RaftAddr: c.raft[i], DataDir: c.dirs[i], Join: join,
		Liveness:      LivenessOptions{RemoveAfter: 10 * time.Minute, UnhealthyAfter: 5 * time.Minute},
		SweepInterval: 50 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		raftStream: func(s raft.StreamLayer) raft.StreamLayer {
			return &faultStream{StreamLayer: s, f: c.f, self: i}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
}

func (c *linCluster) kill(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n != nil {
		n.Kill()
	}
}

// leader is the index of a node that believes it leads, or -1.
func (c *linCluster) leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n != nil && n.IsLeader() {
			return i
		}
	}
	return -1
}

func (c *linCluster) alive() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var a []int
	for i, n := range c.nodes {
		if n != nil {
			a = append(a, i)
		}
	}
	return a
}

// The model: per service, the set of registered instances (bit k for
// instance k), a register, deregister or consistent read at a time.
const (
	linServices  = 3
	linInstances = 5
)

type linOp int

const (
	opReg linOp = iota
	opDereg
	opRead
)

type linInput struct {
	Service int
	Op      linOp
	ID      int
}

type linOutcome int

const (
	outOK linOutcome = iota
	outFailed
	outUnknown // the write may or may not have taken effect, at any later time
)

type linOutput struct {
	Outcome linOutcome
	Set     uint8 // a read's answer
}

var linModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		parts := make([][]porcupine.Operation, linServices)
		for _, op := range h {
			s := op.Input.(linInput).Service
			parts[s] = append(parts[s], op)
		}
		return parts
	},
	Init: func() []any { return []any{uint8(0)} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(uint8), input.(linInput), output.(linOutput)
		bit := uint8(1) << in.ID
		switch in.Op {
		case opRead:
			if out.Set == st {
				return []any{st}
			}
			return nil
		case opReg, opDereg:
			next := st | bit
			if in.Op == opDereg {
				next = st &^ bit
			}
			switch out.Outcome {
			case outOK:
				return []any{next}
			case outFailed:
				return []any{st}
			default:
				return []any{next, st}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		o := [...]string{"ok", "failed", "unknown"}[out.Outcome]
		switch in.Op {
		case opReg:
			return fmt.Sprintf("register(%d) %s", in.ID, o)
		case opDereg:
			return fmt.Sprintf("deregister(%d) %s", in.ID, o)
		}
		return fmt.Sprintf("read() = %05b", out.Set)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%05b", state.(uint8)) },
}

// linIP is instance k's address.
func linIP(k int) string { return fmt.Sprintf("127.0.9.%d", k+1) }

// outcomeOf classifies a write's answer. Only answers that say the write
// was never proposed are failures: a node that knew no leader, or a
// forwarded write that reached a node that no longer led, or Raft's
// "not the leader" before appending. Everything else that is not 200
// (a timeout, a lost leadership while replicating, a broken forward) may
// have been committed, now or later.
func outcomeOf(code int, body []byte, err error) linOutcome {
	if err != nil {
		return outUnknown
	}
	if code == http.StatusOK {
		return outOK
	}
	s := string(body)
	if code == http.StatusServiceUnavailable && (strings.Contains(s, "registry: no leader") ||
		strings.Contains(s, "no longer leads") || strings.Contains(s, raft.ErrNotLeader.Error())) {
		return outFailed
	}
	return outUnknown
}

func TestLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the linearizability check")
	}
	rounds := 1
	if s := os.Getenv("STRATA_LIN_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			t.Fatalf("STRATA_LIN_ROUNDS=%q is not a positive number", s)
		}
	}
	base := t.TempDir()
	c := &linCluster{t: t, f: newFaultNet(), nodes: make([]*Node, 3)}
	for i := 0; i < 3; i++ {
		c.http = append(c.http, freeAddr(t))
		c.raft = append(c.raft, freeAddr(t))
		c.dirs = append(c.dirs, filepath.Join(base, fmt.Sprint(i)))
		c.f.addrs[c.raft[i]] = i
	}
	c.start(0, nil)
	waitFor(t, 5*time.Second, "bootstrap leader", c.nodes[0].IsLeader)
	for i := 1; i < 3; i++ {
		c.start(i, []string{c.http[0]})
	}
	defer func() {
		c.f.healAll()
		for i := range c.nodes {
			c.kill(i)
		}
	}()
	waitFor(t, 10*time.Second, "three members", func() bool { return len(c.nodes[0].Members()) == 3 })

	t0 := time.Now()
	now := func() int64 { return int64(time.Since(t0)) }
	var (
		histMu  sync.Mutex
		history []porcupine.Operation
		counts  [3][3]int // op × outcome
		reads   int
		nextID  = 100 // client ids after an unknown outcome
	)
	record := func(client int, in linInput, call int64, out linOutput, ret int64) {
		histMu.Lock()
		defer histMu.Unlock()
		history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		if in.Op == opRead {
			reads++
		} else {
			counts[in.Op][out.Outcome]++
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 5; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w) + time.Now().UnixNano()))
			hc := &http.Client{Timeout: 3 * time.Second}
			client := w
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := c.alive()
				if len(a) == 0 {
					time.Sleep(time.Millisecond) // every node down: a restart is under way
					continue
				}
				node := c.http[a[rng.Intn(len(a))]]
				in := linInput{Service: rng.Intn(linServices), ID: rng.Intn(linInstances)}
				switch r := rng.Intn(100); {
				case r < 35:
					in.Op = opReg
				case r < 60:
					in.Op = opDereg
				default:
					in.Op = opRead
				}
				svc := fmt.Sprintf("lin-%d", in.Service)
				var req *http.Request
				switch in.Op {
				case opReg:
					b, _ := json.Marshal(map[string]any{"service": svc, "ip": linIP(in.ID), "port": 80})
					req, _ = http.NewRequest(http.MethodPut, "http://"+node+"/v1/registry/instances", bytes.NewReader(b))
				case opDereg:
					req, _ = http.NewRequest(http.MethodDelete, "http://"+node+"/v1/registry/instances?service="+svc+"&ip="+linIP(in.ID)+"&port=80", nil)
				case opRead:
					req, _ = http.NewRequest(http.MethodGet, "http://"+node+"/v1/registry/services/public/DEFAULT_GROUP/"+svc+"?consistent&healthy=false", nil)
				}
				call := now()
				resp, err := hc.Do(req)
				var body []byte
				code := 0
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				ret := now()
				if in.Op == opRead {
					// A read that failed has no effect and tells nothing.
					if err != nil || code != http.StatusOK {
						continue
					}
					var res Result
					if err := json.Unmarshal(body, &res); err != nil {
						t.Errorf("read answer %q: %v", body, err)
						return
					}
					var set uint8
					for _, in := range res.Instances {
						for k := 0; k < linInstances; k++ {
							if in.IP == linIP(k) {
								set |= 1 << k
							}
						}
					}
					record(client, in, call, linOutput{Outcome: outOK, Set: set}, ret)
					continue
				}
				out := linOutput{Outcome: outcomeOf(code, body, err)}
				if out.Outcome == outUnknown {
					// It may take effect at any later time: it never
					// returns, and this worker goes on as a new client.
					ret = math.MaxInt64
				}
				record(client, in, call, out, ret)
				if out.Outcome == outUnknown {
					histMu.Lock()
					client = nextID
					nextID++
					histMu.Unlock()
				}
			}
		}(w)
	}

	// waitLeader waits for a leader other than not and returns it.
	waitLeader := func(not int) int {
		var l int
		waitFor(t, 10*time.Second, "a leader", func() bool {
			l = c.leader()
			return l >= 0 && l != not
		})
		return l
	}
	// quiet lets the traffic run for d: the length of a fault or of a
	// calm is the schedule itself, not a condition to wait for.
	quiet := func(d time.Duration) { time.Sleep(d) }
	others := func(i int) (int, int) { return (i + 1) % 3, (i + 2) % 3 }
	for r := 0; r < rounds; r++ {
		quiet(time.Second)

		l := waitLeader(-1)
		t.Logf("round %d: killing leader %d", r, l)
		c.kill(l)
		waitLeader(l)
		quiet(time.Second)
		c.start(l, nil)
		quiet(time.Second)

		l = waitLeader(-1)
		a, _ := others(l)
		t.Logf("round %d: pausing follower %d", r, a)
		c.f.pause(a, true)
		quiet(1500 * time.Millisecond)
		c.f.pause(a, false)

		l = waitLeader(-1)
		a, b := others(l)
		t.Logf("round %d: cutting leader %d off", r, l)
		c.f.setCut(l, a, true)
		c.f.setCut(l, b, true)
		quiet(2 * time.Second)
		c.f.setCut(l, a, false)
		c.f.setCut(l, b, false)
		quiet(time.Second)

		l = waitLeader(-1)
		a, b = others(l)
		t.Logf("round %d: cutting follower %d off", r, a)
		c.f.setCut(a, l, true)
		c.f.setCut(a, b, true)
		quiet(time.Second)
		c.f.healAll()
	}
	quiet(time.Second)
	close(stop)
	wg.Wait()

	// Every service read once more through the leader, so the final
	// state takes part in the check.
	hc := &http.Client{Timeout: 5 * time.Second}
	for s := 0; s < linServices; s++ {
		waitFor(t, 10*time.Second, "a final consistent read", func() bool {
			l := c.leader()
			if l < 0 {
				return false
			}
			call := now()
			resp, err := hc.Get("http://" + c.http[l] + "/v1/registry/services/public/DEFAULT_GROUP/lin-" + strconv.Itoa(s) + "?consistent&healthy=false")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var res Result
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&res) != nil {
				return false
			}
			var set uint8
			for _, in := range res.Instances {
				for k := 0; k < linInstances; k++ {
					if in.IP == linIP(k) {
						set |= 1 << k
					}
				}
			}
			record(0, linInput{Service: s, Op: opRead}, call, linOutput{Set: set}, now())
			return true
		})
	}

	t.Logf("history: %d operations; registrations ok/failed/unknown %v, deregistrations %v, consistent reads %d",
		len(history), counts[opReg], counts[opDereg], reads)
	if reads < 50 || counts[opReg][outOK] < 50 || counts[opDereg][outOK] < 20 {
		t.Fatalf("too little traffic got through for the check to mean anything")
	}
	model := linModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, history, 2*time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("strata-linearizability-%d.html", os.Getpid()))
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			t.Logf("visualizing: %v", err)
		}
		t.Fatalf("the history is not linearizable; see %s", path)
	default:
		t.Fatalf("porcupine could not decide within its time limit (%d operations)", len(history))
	}
}
