package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func benchStore(nInst int) *Store {
	s := NewStore()
	ins := make([]Instance, nInst)
	for i := range ins {
		ins[i] = inst(fmt.Sprintf("127.0.%d.%d", i/250, i%250+1), 80, fmt.Sprint("z", i%3), i%10 != 0, "version", fmt.Sprint(i%2))
	}
	c := Command{Op: OpRegister, Key: svcKey, Instances: ins}
	s.Apply(&c)
	return s
}

func BenchmarkSelectHealthy(b *testing.B) {
	s := benchStore(10)
	v, _ := s.Get(svcKey)
	q := Query{Key: svcKey, HealthyOnly: true}
	b.ReportAllocs()
	for b.Loop() {
		Select(v, true, &q)
	}
}

func BenchmarkApplyRegister(b *testing.B) {
	s := NewStore()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := Command{Op: OpRegister, Key: Key{Service: fmt.Sprint("s", i%100)}, Instances: []Instance{inst(fmt.Sprintf("127.%d.%d.%d", i>>16&255, i>>8&255, i&255), 80, "", true)}}
		s.Apply(&c)
		i++
	}
}

// BenchmarkQueryHandler measures the HTTP query path without the network:
// the cached answer of an unchanged service.
func BenchmarkQueryHandler(b *testing.B) {
	n := &Node{store: benchStore(10)}
	n.SetTokens("", nil)
	h := http.HandlerFunc(n.handleQuery)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/registry/services/{ns}/{group}/{service}", h)
	req := httptest.NewRequest("GET", "/v1/registry/services/prod/g/web", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkSweep100k is one leader sweep over 100k ephemeral instances
// that all beat in time: the steady state of a large registry.
func BenchmarkSweep100k(b *testing.B) {
	s := NewStore()
	for svc := 0; svc < 1000; svc++ {
		ins := make([]Instance, 100)
		for i := range ins {
			ins[i] = inst(fmt.Sprintf("127.%d.%d.%d", svc/250, svc%250, i+1), 80, "", true)
		}
		c := Command{Op: OpRegister, Key: Key{Service: fmt.Sprint("s", svc)}, Instances: ins}
		s.Apply(&c)
	}
	// A frozen clock: every instance stays within its heartbeat window.
	now := time.Unix(1000, 0)
	l := NewLiveness(LivenessOptions{Now: func() time.Time { return now }})
	l.Sweep(s)
	b.ReportAllocs()
	for b.Loop() {
		if c := l.Sweep(s); c != nil {
			b.Fatal("changes in a steady state")
		}
	}
}

// BenchmarkRegisterHTTP is the write path end to end on one node with its
// Raft log on disk: concurrent clients register a new ephemeral instance
// each over HTTP (what bench/registry's reg mode does); run it with
// -cpuprofile to see where a registration's time goes.
func BenchmarkRegisterHTTP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	n, err := Start(ln, Options{RaftAddr: "127.0.0.1:0", DataDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Liveness: LivenessOptions{UnhealthyAfter: time.Hour, RemoveAfter: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close(context.Background())
	for deadline := time.Now().Add(10 * time.Second); !n.Serving(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	url := "http://" + n.Addr().String() + "/v1/registry/instances"
	var next atomic.Int64
	b.SetParallelism(16)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			body := fmt.Sprintf(`{"service":"s%d","ip":"10.%d.%d.%d","port":80}`, i%100, i>>16&255, i>>8&255, i&255)
			req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	// CPU time per registration (server and client, user and system) is
	// steadier than ns/op on a shared machine, whose load moves the wall
	// time of a fsync-bound path severalfold.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBeatHandler is one heartbeat of a known, healthy instance
// through the HTTP handler without the network: the steady state of every
// ephemeral instance, which never reaches Raft.
func BenchmarkBeatHandler(b *testing.B) {
	n := &Node{store: benchStore(10), live: NewLiveness(LivenessOptions{})}
	n.SetTokens("", nil)
	mux := http.NewServeMux()
	// The handler as write runs it on the leader (there is no Raft here).
	mux.HandleFunc("PUT /v1/registry/beat", func(w http.ResponseWriter, r *http.Request) {
		if err := n.handleBeat(w, r); err != nil {
			writeErr(w, err)
		}
	})
	body := `{"namespace":"prod","group":"g","service":"web","ip":"127.0.0.2","port":80,"cluster":"z1"}`
	if _, ok := n.store.Instance(svcKey, "127.0.0.2#80#z1"); !ok {
		b.Fatal("no such instance")
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("PUT", "/v1/registry/beat", strings.NewReader(body))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

// BenchmarkConfigListeners1000 is a publish with 1,000 long-poll
// listeners parked on its key over loopback HTTP: each iteration parks
// them, publishes once through the node, and waits for every answer. It
// reports the time from the publish to the first and the last answer
// (p50 and p99 of the 1,000) and publishes answered per second.
func BenchmarkConfigListeners1000(b *testing.B) {
	const listeners = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	n, err := Start(ln, Options{RaftAddr: "127.0.0.1:0", MaxParkedPerClient: 2 * listeners, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Kill()
	for !n.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * listeners}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	key := ConfigKey{DataID: "bench"}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		cur, err := n.ConfigPublish(ConfigWrite{Key: key, Content: fmt.Sprint("v", i)})
		if err != nil {
			b.Fatal(err)
		}
		form := "Listening-Configs=" + url.QueryEscape("bench\x02DEFAULT_GROUP\x02"+cur.MD5+"\x01")
		done := make(chan time.Time, listeners)
		base := n.parked.Load()
		for j := 0; j < listeners; j++ {
			go func() {
				req, _ := http.NewRequest("POST", "http://"+n.ID()+"/nacos/v1/cs/configs/listener", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Long-Pulling-Timeout", "30000")
				resp, err := cl.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				done <- time.Now()
			}()
		}
		deadline := time.Now().Add(30 * time.Second)
		for n.parked.Load() < base+listeners {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d listeners parked", n.parked.Load()-base, listeners)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := n.ConfigPublish(ConfigWrite{Key: key, Content: fmt.Sprint("w", i)}); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < listeners; j++ {
			lat = append(lat, (<-done).Sub(start))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "last-ms")
}

// BenchmarkConfigPublish is publishes through the Node API on a
// single-node cluster with Raft in memory, from 32 goroutines (as
// BenchmarkRegisterHTTP's clients), 100 keys; no listener.
func BenchmarkConfigPublish(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	n, err := Start(ln, Options{RaftAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Kill()
	for !n.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	var seq atomic.Int64
	b.SetParallelism(16) // 32 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if _, err := n.ConfigPublish(ConfigWrite{Key: ConfigKey{DataID: fmt.Sprint("k", i%100)}, Content: fmt.Sprint("pool: ", i)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}
