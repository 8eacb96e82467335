package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func inst(ip string, port int, cluster string, healthy bool, md ...string) Instance {
	m := map[string]string{}
	for i := 0; i+1 < len(md); i += 2 {
		m[md[i]] = md[i+1]
	}
	if cluster == "" {
		cluster = DefaultCluster
	}
	return Instance{IP: ip, Port: port, Cluster: cluster, Weight: 1, Healthy: healthy, Enabled: true, Ephemeral: true, Metadata: m}
}

var svcKey = Key{Namespace: "prod", Group: "g", Service: "web"}

func mustApply(t *testing.T, s *Store, c Command) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("validate %s: %v", c.Op, err)
	}
	if _, err := s.Apply(&c); err != nil {
		t.Fatalf("apply %s: %v", c.Op, err)
	}
}

func TestStoreRegisterDeregister(t *testing.T) {
	s := NewStore()
	mustApply(t, s, Command{Op: OpRegister, Key: svcKey, Instances: []Instance{inst("127.0.0.2", 80, "", true), inst("127.0.0.1", 80, "", true)}})
	v, ok := s.Get(svcKey)
	if !ok || len(v.Instances) != 2 || v.Instances[0].IP != "127.0.0.1" || v.Instances[0].Cluster != DefaultCluster {
		t.Fatalf("after register: ok=%v %+v", ok, v.Instances)
	}
	if v.Index != 1 || s.Index() != 1 {
		t.Fatalf("index: view %d store %d, want 1", v.Index, s.Index())
	}
	mustApply(t, s, Command{Op: OpDeregister, Key: svcKey, IDs: []string{"127.0.0.1#80#DEFAULT", "127.0.0.2#80#DEFAULT"}})
	if _, ok := s.Get(svcKey); ok {
		t.Fatal("implicit service survived its last instance")
	}
	// A no-op does not move the index.
	mustApply(t, s, Command{Op: OpDeregister, Key: svcKey, IDs: []string{"x"}})
	if s.Index() != 2 {
		t.Fatalf("index %d after a no-op, want 2", s.Index())
	}
}

func TestCommandValidate(t *testing.T) {
	for _, tc := range []struct {
		desc string
		c    Command
	}{
		{"bad ip", Command{Op: OpRegister, Key: svcKey, Instances: []Instance{{IP: "nope", Port: 1}}}},
		{"bad port", Command{Op: OpRegister, Key: svcKey, Instances: []Instance{{IP: "1.2.3.4", Port: 70000}}}},
		{"no service", Command{Op: OpRegister, Key: Key{}}},
		{"slash", Command{Op: OpRegister, Key: Key{Service: "a/b"}}},
		{"unknown op", Command{Op: "zap", Key: svcKey}},
		{"threshold", Command{Op: OpPutService, Service: &Service{Key: svcKey, ProtectThreshold: 2}}},
		{"route without select", Command{Op: OpPutService, Service: &Service{Key: svcKey, Routes: []Route{{Name: "r", Percent: 10}}}}},
		{"negative weight", Command{Op: OpPatch, Key: svcKey, Patch: &Patch{Weight: new(-1.0)}}},
	} {
		if err := tc.c.Validate(); err == nil {
			t.Errorf("%s: no error", tc.desc)
		}
	}
}

func TestDeleteServiceWithInstances(t *testing.T) {
	s := NewStore()
	mustApply(t, s, Command{Op: OpPutService, Service: &Service{Key: svcKey}})
	mustApply(t, s, Command{Op: OpRegister, Key: svcKey, Instances: []Instance{inst("127.0.0.1", 80, "", true)}})
	c := Command{Op: OpDeleteService, Key: svcKey}
	if _, err := s.Apply(&c); err == nil {
		t.Fatal("deleted a service that has instances")
	}
	mustApply(t, s, Command{Op: OpDeregister, Key: svcKey, IDs: []string{"127.0.0.1#80#DEFAULT"}})
	if _, ok := s.Get(svcKey); !ok {
		t.Fatal("explicit service went with its last instance")
	}
	mustApply(t, s, c)
	if _, ok := s.Get(svcKey); ok {
		t.Fatal("service not deleted")
	}
}

func TestStoreWaitWakesOnChange(t *testing.T) {
	s := NewStore()
	mustApply(t, s, Command{Op: OpRegister, Key: svcKey, Instances: []Instance{inst("127.0.0.1", 80, "", true)}})
	idx := s.Index()
	got := make(chan View, 1)
	go func() {
		v, _ := s.Wait(context.Background(), svcKey, idx)
		got <- v
	}()
	// A change to another service must not wake the waiter.
	mustApply(t, s, Command{Op: OpRegister, Key: Key{Service: "other"}, Instances: []Instance{inst("127.0.0.9", 80, "", true)}})
	select {
	case v := <-got:
		t.Fatalf("woken by another service: %+v", v)
	case <-time.After(50 * time.Millisecond):
	}
	mustApply(t, s, Command{Op: OpRegister, Key: svcKey, Instances: []Instance{inst("127.0.0.2", 80, "", true)}})
	select {
	case v := <-got:
		if len(v.Instances) != 2 || v.Index <= idx {
			t.Fatalf("woken with %+v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if v, _ := s.Wait(ctx, svcKey, s.Index()); len(v.Instances) != 2 {
		t.Fatalf("timed-out wait returned %+v", v)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := NewStore()
	mustApply(t, s, Command{Op: OpPutService, Service: &Service{Key: svcKey, ProtectThreshold: 0.5}})
	mustApply(t, s, Command{Op: OpRegister, Key: svcKey, Instances: []Instance{inst("127.0.0.1", 80, "a", true, "version", "2")}})
	var buf bytes.Buffer
	if err := s.Save(&buf); err != nil {
		t.Fatal(err)
	}
	r := NewStore()
	if err := r.Load(&buf); err != nil {
		t.Fatal(err)
	}
	v, ok := r.Get(svcKey)
	if !ok || r.Index() != s.Index() || v.Service.ProtectThreshold != 0.5 || len(v.Instances) != 1 || v.Instances[0].Metadata["version"] != "2" {
		t.Fatalf("restored %+v index %d", v, r.Index())
	}
	if err := r.Load(bytes.NewReader([]byte("{bad"))); err == nil {
		t.Fatal("loaded garbage")
	}
}

// TestViewStaysSorted applies random commands and batches and checks after
// each that the incrementally kept view equals a full rebuild.
func TestViewStaysSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := NewStore()
	k := Key{Service: "v"}
	randInst := func() Instance {
		return inst(fmt.Sprintf("127.0.0.%d", rng.IntN(20)), 80+rng.IntN(3), fmt.Sprint("c", rng.IntN(3)), rng.IntN(2) == 0)
	}
	randCmd := func() Command {
		switch rng.IntN(5) {
		case 0, 1:
			return Command{Op: OpRegister, Key: k, Instances: []Instance{randInst()}}
		case 2:
			return Command{Op: OpRegister, Key: k, Instances: []Instance{randInst(), randInst()}}
		case 3:
			in := randInst()
			return Command{Op: OpDeregister, Key: k, IDs: []string{in.ID()}}
		default:
			in := randInst()
			return Command{Op: OpSetHealth, Key: k, IDs: []string{in.ID()}, Healthy: rng.IntN(2) == 0}
		}
	}
	for i := 0; i < 600; i++ {
		c := randCmd()
		if rng.IntN(4) == 0 {
			c = Command{Op: OpBatch, Batch: []Command{randCmd(), randCmd(), randCmd()}}
		}
		if rng.IntN(50) == 0 {
			c = Command{Op: OpPutService, Service: &Service{Key: k, ProtectThreshold: rng.Float64()}}
		}
		mustApply(t, s, c)
		s.mu.RLock()
		e := s.services[k.withDefaults()]
		if e != nil {
			want := &entry{inst: e.inst}
			want.rebuild(0)
			if fmt.Sprint(want.view) != fmt.Sprint(e.view) {
				s.mu.RUnlock()
				t.Fatalf("step %d (%s): view %v, want %v", i, c.Op, e.view, want.view)
			}
		}
		s.mu.RUnlock()
	}
}

// TestLimitCountsSurviveSnapshot: the per-namespace counts the limits
// read are rebuilt from a snapshot, so a node restored from one refuses
// what the others refuse.
func TestLimitCountsSurviveSnapshot(t *testing.T) {
	l := &Limits{InstancesPerService: 10, InstancesPerNamespace: 2, ServicesPerNamespace: 10}
	s := NewStore()
	for i, svc := range []string{"a", "b"} {
		if _, err := s.Apply(&Command{Op: OpRegister, Key: Key{Service: svc}.withDefaults(), Limits: l, Instances: []Instance{{IP: "127.0.0.1", Port: 80 + i, Weight: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := s.Save(&buf); err != nil {
		t.Fatal(err)
	}
	r := NewStore()
	if err := r.Load(&buf); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*Store{"original": s, "restored": r} {
		_, err := st.Apply(&Command{Op: OpRegister, Key: Key{Service: "c"}.withDefaults(), Limits: l, Instances: []Instance{{IP: "127.0.0.1", Port: 90, Weight: 1}}})
		var le *LimitError
		if !errors.As(err, &le) {
			t.Errorf("%s store: a third instance in the namespace: err = %v", name, err)
		}
		if _, ok := st.Get(Key{Service: "c"}); ok {
			t.Errorf("%s store: the refused registration created its service", name)
		}
	}
}
