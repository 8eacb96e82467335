package registry

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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
