package registry

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzCommand feeds Raft log entries as a newer or corrupt peer might
// write them: decoding, validation and applying must never panic, and a
// command that validates and applies leaves a store that snapshots and
// restores to the same index.
func FuzzCommand(f *testing.F) {
	f.Add([]byte(`{"op":"register","key":{"service":"a"},"instances":[{"ip":"127.0.0.1","port":80}]}`))
	f.Add([]byte(`{"op":"batch","batch":[{"op":"health","key":{"service":"a"},"ids":["127.0.0.1#80#DEFAULT"]},{"op":"deregister","key":{"service":"a"},"ids":["x"]}]}`))
	f.Add([]byte(`{"op":"put_service","service":{"service":"a","protect_threshold":0.5,"routes":[{"name":"r","percent":10,"select":{"v":"2"}}]}}`))
	f.Add([]byte(`{"op":"patch","key":{"service":"a"},"ids":["127.0.0.1#80#DEFAULT"],"patch":{"weight":3}}`))
	f.Add([]byte(`{"op":"config_publish","config":{"key":{"data_id":"a"},"content":"x","beta_ips":["1.2.3.4"],"history":2,"max_configs":3}}`))
	f.Add([]byte(`{"op":"config_publish","config":{"key":{"namespace":"n","group":"g","data_id":"a"},"content":"x","tag":"t","cas_md5":"y"}}`))
	f.Add([]byte(`{"op":"config_remove","config":{"key":{"data_id":"a"},"beta":true}}`))
	f.Add([]byte(`{"op":"config_rollback","config":{"key":{"data_id":"a"},"version":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewStore()
		seed := Command{Op: OpRegister, Key: Key{Service: "a"}, Instances: []Instance{{IP: "127.0.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true}}}
		s.Apply(&seed)
		var c Command
		if json.Unmarshal(data, &c) != nil {
			return
		}
		valid := c.Validate() == nil
		s.Apply(&c) // must not panic, valid or not
		if !valid {
			return
		}
		var buf bytes.Buffer
		if err := s.Save(&buf); err != nil {
			t.Fatal(err)
		}
		r := NewStore()
		if err := r.Load(&buf); err != nil {
			t.Fatalf("restoring a snapshot: %v", err)
		}
		if r.cfg.index != s.cfg.index || len(r.cfg.entries) != len(s.cfg.entries) {
			t.Fatalf("config index %d and %d keys after restore, want %d and %d", r.cfg.index, len(r.cfg.entries), s.cfg.index, len(s.cfg.entries))
		}
		if r.Index() != s.Index() {
			t.Fatalf("index %d after restore, want %d", r.Index(), s.Index())
		}
		for _, k := range s.Services("", "") {
			v, _ := s.Get(k)
			rv, ok := r.Get(k)
			if !ok || len(rv.Instances) != len(v.Instances) {
				t.Fatalf("service %s lost in the snapshot", k)
			}
			q := Query{Key: k, HealthyOnly: true, Zone: "z", Caller: "c"}
			Select(v, true, &q)
		}
	})
}

// FuzzNacosParams parses Nacos form parameters as the Nacos handlers do.
func FuzzNacosParams(f *testing.F) {
	f.Add("serviceName=DEFAULT_GROUP@@svc&ip=127.0.0.1&port=80&weight=1.5&metadata={\"v\":\"2\"}&ephemeral=true")
	f.Add("serviceName=@@&ip=::1&port=65535&clusterName=a&enabled=false")
	f.Add("beat={\"ip\":\"1.2.3.4\",\"port\":1}&serviceName=g@@s")
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw)
		f := form(v)
		if k, err := nacosKey(f); err == nil {
			if k.Service == "" || k.Namespace == "" || k.Group == "" {
				t.Fatalf("accepted key %+v", k)
			}
		}
		if in, err := nacosInstance(f); err == nil {
			if in.Port < 1 || in.Port > 65535 || in.Cluster == "" {
				t.Fatalf("accepted instance %+v", in)
			}
		}
		var b nacosBeatInfo
		_ = json.Unmarshal([]byte(f.get("beat")), &b)
	})
}

// FuzzSelectorPairs parses k=v selector lists from query strings.
func FuzzSelectorPairs(f *testing.F) {
	f.Add("version=2,zone=a")
	f.Add("=x")
	f.Add("a=b=c,,")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := pairs([]string{s})
		if err != nil {
			return
		}
		for k := range m {
			if k == "" {
				t.Fatalf("empty key accepted from %q", s)
			}
		}
	})
}

// FuzzListeningConfigs parses the long-poll listener's Listening-Configs
// as nacosConfigListen does: never a panic, every key it accepts is valid,
// and the answer naming them all decodes to one line per key.
func FuzzListeningConfigs(f *testing.F) {
	f.Add("a\x02DEFAULT_GROUP\x02d41d8cd98f00b204e9800998ecf8427e\x01")
	f.Add("a\x02g\x02\x02prod\x01b\x02g\x02x\x01")
	f.Add("\x01\x01\x02")
	f.Fuzz(func(t *testing.T, raw string) {
		es, err := parseListening(raw)
		if err != nil {
			return
		}
		ps := make([]*listenEntry, len(es))
		for i := range es {
			if err := es[i].key.Validate(); err != nil {
				t.Fatalf("accepted an invalid key %+v: %v", es[i].key, err)
			}
			ps[i] = &es[i]
		}
		ans, err := url.QueryUnescape(listenAnswer(ps))
		if err != nil {
			t.Fatalf("answer does not decode: %v", err)
		}
		if got := strings.Count(ans, listenLineSep); got != len(es) {
			t.Fatalf("answer has %d lines for %d keys", got, len(es))
		}
	})
}
