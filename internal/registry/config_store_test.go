package registry

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pub applies a publish to s directly, as the FSM would.
func pub(t *testing.T, s *Store, c ConfigCommand) (uint64, error) {
	t.Helper()
	if c.Time == 0 {
		c.Time = 1
	}
	cmd := &Command{Op: OpConfigPublish, Config: &c}
	if err := cmd.Validate(); err != nil {
		return 0, err
	}
	return s.Apply(cmd)
}

func cfgKey(id string) ConfigKey { return ConfigKey{DataID: id} }

func TestConfigPublishGetAndDefaults(t *testing.T) {
	s := NewStore()
	if _, err := pub(t, s, ConfigCommand{Key: ConfigKey{Namespace: "", Group: "", DataID: "app.yaml"}, Content: "a: 1", Type: "yaml"}); err != nil {
		t.Fatal(err)
	}
	// "" and "public" are one namespace, "" group is DEFAULT_GROUP.
	it, ok := s.cfg.get(ConfigKey{Namespace: "public", Group: "DEFAULT_GROUP", DataID: "app.yaml"}, "", "")
	if !ok || it.Content != "a: 1" || it.MD5 != ContentMD5("a: 1") || it.Type != "yaml" {
		t.Fatalf("got %+v %v", it, ok)
	}
	// The md5 is Nacos's: lowercase hex of the bytes.
	if want := "d41d8cd98f00b204e9800998ecf8427e"; ContentMD5("") != want {
		t.Fatalf("md5 of empty = %s, want %s", ContentMD5(""), want)
	}
	// A publish without a type keeps the current one.
	pub(t, s, ConfigCommand{Key: cfgKey("app.yaml"), Content: "a: 2"})
	if it, _ := s.cfg.get(cfgKey("app.yaml"), "", ""); it.Type != "yaml" || it.Content != "a: 2" {
		t.Fatalf("after republish: %+v", it)
	}
	// Index of the store (naming) did not move: config has its own.
	if s.Index() != 0 {
		t.Fatalf("naming index moved to %d", s.Index())
	}
	for _, bad := range []ConfigKey{{}, {DataID: "a/b"}, {DataID: "a\x02b"}, {DataID: strings.Repeat("x", 300)}} {
		if _, err := pub(t, s, ConfigCommand{Key: bad, Content: "x"}); err == nil {
			t.Errorf("key %q accepted", bad.DataID)
		}
	}
}

func TestConfigCAS(t *testing.T) {
	s := NewStore()
	k := cfgKey("db.properties")
	// casMd5 on a key that does not exist creates it (Nacos's
	// insertOrUpdateCas).
	if _, err := pub(t, s, ConfigCommand{Key: k, Content: "v1", CasMD5: "0123"}); err != nil {
		t.Fatalf("cas create: %v", err)
	}
	m1 := ContentMD5("v1")
	if _, err := pub(t, s, ConfigCommand{Key: k, Content: "v2", CasMD5: m1}); err != nil {
		t.Fatalf("cas with the current md5: %v", err)
	}
	// The md5 of v1 is stale now.
	_, err := pub(t, s, ConfigCommand{Key: k, Content: "v3", CasMD5: m1})
	if !errors.Is(err, ErrConfigConflict) {
		t.Fatalf("stale cas: err %v, want ErrConfigConflict", err)
	}
	if it, _ := s.cfg.get(k, "", ""); it.Content != "v2" {
		t.Fatalf("a refused cas changed the content to %q", it.Content)
	}
	if h := s.cfg.versions(k); len(h) != 2 {
		t.Fatalf("a refused cas went into the history: %+v", h)
	}
}

func TestConfigHistoryBoundAndRollback(t *testing.T) {
	s := NewStore()
	k := cfgKey("app")
	var versions []uint64
	for i := 1; i <= 7; i++ {
		idx, err := pub(t, s, ConfigCommand{Key: k, Content: fmt.Sprintf("v%d", i), History: 5, SrcIP: "10.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, idx)
	}
	h := s.cfg.versions(k)
	if len(h) != 5 {
		t.Fatalf("history has %d versions, want the bound 5", len(h))
	}
	if h[0].Content != "v7" || h[4].Content != "v3" || h[0].Version != versions[6] || h[0].SrcIP != "10.0.0.1" || h[0].Op != "publish" {
		t.Fatalf("history not newest first: %+v", h)
	}
	// Roll back to v4: a new version with v4's content.
	c := &Command{Op: OpConfigRollback, Config: &ConfigCommand{Key: k, Version: versions[3], History: 5, Time: 2}}
	if _, err := s.Apply(c); err != nil {
		t.Fatal(err)
	}
	it, _ := s.cfg.get(k, "", "")
	if it.Content != "v4" || it.Version <= versions[6] {
		t.Fatalf("after rollback: %+v", it)
	}
	if h := s.cfg.versions(k); h[0].Op != "rollback" || h[0].Content != "v4" || len(h) != 5 {
		t.Fatalf("rollback not recorded: %+v", h[0])
	}
	// A version that fell out of the history cannot be rolled back to.
	_, err := s.Apply(&Command{Op: OpConfigRollback, Config: &ConfigCommand{Key: k, Version: versions[0]}})
	if !errors.Is(err, ErrConfigNotFound) {
		t.Fatalf("rollback to a trimmed version: %v", err)
	}
	// A removal is recorded and can itself be undone by a rollback.
	s.Apply(&Command{Op: OpConfigRemove, Config: &ConfigCommand{Key: k, History: 5}})
	if _, ok := s.cfg.get(k, "", ""); ok {
		t.Fatal("removed config still served")
	}
	h = s.cfg.versions(k)
	if h[0].Op != "remove" {
		t.Fatalf("removal not in the history: %+v", h[0])
	}
	if _, err := s.Apply(&Command{Op: OpConfigRollback, Config: &ConfigCommand{Key: k, Version: h[1].Version, History: 5}}); err != nil {
		t.Fatal(err)
	}
	if it, ok := s.cfg.get(k, "", ""); !ok || it.Content != "v4" {
		t.Fatalf("rollback after removal: %+v %v", it, ok)
	}
}

func TestConfigBetaAndTag(t *testing.T) {
	s := NewStore()
	k := cfgKey("feature")
	pub(t, s, ConfigCommand{Key: k, Content: "main"})
	if _, err := pub(t, s, ConfigCommand{Key: k, Content: "beta", BetaIPs: []string{"10.0.0.7", "10.0.0.8"}}); err != nil {
		t.Fatal(err)
	}
	pub(t, s, ConfigCommand{Key: k, Content: "canary", Tag: "canary"})
	for _, tc := range []struct {
		desc, ip, tag, want string
		beta, ok            bool
	}{
		{"a beta IP gets the beta", "10.0.0.8", "", "beta", true, true},
		{"another IP gets the main", "10.0.0.9", "", "main", false, true},
		{"no IP gets the main", "", "", "main", false, true},
		{"a tag gets its variant", "10.0.0.8", "canary", "canary", false, true},
		{"an unknown tag gets nothing", "", "nope", "", false, false},
	} {
		it, ok := s.cfg.get(k, tc.ip, tc.tag)
		if ok != tc.ok || it.Content != tc.want || it.Beta != tc.beta {
			t.Errorf("%s: got %q beta=%v ok=%v", tc.desc, it.Content, it.Beta, ok)
		}
	}
	// Only main publishes are history.
	if h := s.cfg.versions(k); len(h) != 1 {
		t.Fatalf("history %+v", h)
	}
	// Stopping the beta serves the main to everyone again.
	s.Apply(&Command{Op: OpConfigRemove, Config: &ConfigCommand{Key: k, Beta: true}})
	if it, _ := s.cfg.get(k, "10.0.0.8", ""); it.Content != "main" {
		t.Fatalf("after beta removal: %q", it.Content)
	}
	if err := (&Command{Op: OpConfigPublish, Config: &ConfigCommand{Key: k, BetaIPs: []string{"a,b"}}}).Validate(); err == nil {
		t.Fatal("a beta IP with a comma was accepted")
	}
}

func TestConfigMaxConfigs(t *testing.T) {
	s := NewStore()
	for i := 0; i < 3; i++ {
		if _, err := pub(t, s, ConfigCommand{Key: cfgKey(fmt.Sprint(i)), Content: "x", MaxConfigs: 3}); err != nil {
			t.Fatal(err)
		}
	}
	var le *LimitError
	if _, err := pub(t, s, ConfigCommand{Key: cfgKey("3"), Content: "x", MaxConfigs: 3}); !errors.As(err, &le) {
		t.Fatalf("fourth config: %v, want a LimitError", err)
	}
	// An update of an existing key and another namespace are not bounded
	// by it.
	if _, err := pub(t, s, ConfigCommand{Key: cfgKey("0"), Content: "y", MaxConfigs: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := pub(t, s, ConfigCommand{Key: ConfigKey{Namespace: "dev", DataID: "3"}, Content: "x", MaxConfigs: 3}); err != nil {
		t.Fatal(err)
	}
	// Histories of removed keys are bounded too.
	for i := 0; i < 20; i++ {
		k := ConfigKey{Namespace: "churn", DataID: fmt.Sprint(i)}
		pub(t, s, ConfigCommand{Key: k, Content: "x", MaxConfigs: 3})
		s.Apply(&Command{Op: OpConfigRemove, Config: &ConfigCommand{Key: k, MaxConfigs: 3}})
	}
	if n := len(s.cfg.history) - len(s.cfg.entries); n > 3 {
		t.Fatalf("%d removed keys keep a history, more than 3", n)
	}
	if h := s.cfg.versions(ConfigKey{Namespace: "churn", DataID: "19"}); len(h) != 2 {
		t.Fatalf("the latest removed key lost its history: %+v", h)
	}
}

func TestConfigSnapshotRoundTrip(t *testing.T) {
	s := NewStore()
	s.Apply(&Command{Op: OpRegister, Key: Key{Service: "pay"}, Instances: []Instance{{IP: "10.0.0.1", Port: 80, Weight: 1, Healthy: true, Enabled: true}}})
	k := cfgKey("app")
	pub(t, s, ConfigCommand{Key: k, Content: "v1", Type: "yaml"})
	pub(t, s, ConfigCommand{Key: k, Content: "v2"})
	pub(t, s, ConfigCommand{Key: k, Content: "b", BetaIPs: []string{"10.1.1.1"}})
	pub(t, s, ConfigCommand{Key: k, Content: "t", Tag: "gray"})
	var buf bytes.Buffer
	if err := s.Save(&buf); err != nil {
		t.Fatal(err)
	}
	r := NewStore()
	w := r.cfg.watch.newWatch("", "")
	w.Add(k)
	if err := r.Load(&buf); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ip, tag, want string }{{"", "", "v2"}, {"10.1.1.1", "", "b"}, {"", "gray", "t"}} {
		if it, _ := r.cfg.get(k, tc.ip, tc.tag); it.Content != tc.want {
			t.Errorf("restored %q/%q: %q, want %q", tc.ip, tc.tag, it.Content, tc.want)
		}
	}
	if h := r.cfg.versions(k); len(h) != 2 || h[1].Content != "v1" {
		t.Fatalf("restored history %+v", h)
	}
	if r.cfg.index != s.cfg.index || r.Index() != s.Index() {
		t.Fatalf("indexes %d/%d, want %d/%d", r.cfg.index, r.Index(), s.cfg.index, s.Index())
	}
	// A restore tells watchers what they are served now.
	select {
	case <-w.Changed():
	default:
		t.Fatal("restore did not signal the watch")
	}
	if ch := w.Drain(); len(ch) != 1 || ch[0].MD5 != ContentMD5("v2") {
		t.Fatalf("restore noted %+v", ch)
	}
	// The next version continues from the restored index.
	idx, _ := pub(t, r, ConfigCommand{Key: k, Content: "v3"})
	if idx != s.cfg.index+1 {
		t.Fatalf("index after restore %d, want %d", idx, s.cfg.index+1)
	}

	// A snapshot written before the config service (no "config" field)
	// still loads, with no configurations.
	old := `{"index":3,"services":[{"service":{"namespace":"public","group":"DEFAULT_GROUP","service":"pay","protect_threshold":0,"failover":{}},"explicit":false,"index":3,"instances":[{"ip":"10.0.0.1","port":80,"cluster":"DEFAULT","weight":1,"healthy":true,"enabled":true,"ephemeral":true}]}]}`
	if err := r.Load(strings.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.cfg.get(k, "", ""); ok || r.cfg.index != 0 {
		t.Fatal("old snapshot left configs behind")
	}
	if v, ok := r.Get(Key{Service: "pay"}); !ok || len(v.Instances) != 1 {
		t.Fatal("old snapshot lost its services")
	}
}

func TestConfigWatch(t *testing.T) {
	s := NewStore()
	a, b := cfgKey("a"), cfgKey("b")
	pub(t, s, ConfigCommand{Key: a, Content: "a1"})
	pub(t, s, ConfigCommand{Key: b, Content: "b1"})
	w := s.cfg.watch.newWatch("10.0.0.5", "")
	defer w.Close()
	if err := w.Add(a, ConfigKey{Namespace: "public", Group: "DEFAULT_GROUP", DataID: "b"}); err != nil {
		t.Fatal(err)
	}
	pub(t, s, ConfigCommand{Key: cfgKey("other"), Content: "x"})
	select {
	case <-w.Changed():
		t.Fatal("signalled for a key it does not follow")
	default:
	}
	// Two changes of a coalesce into its latest md5.
	pub(t, s, ConfigCommand{Key: a, Content: "a2"})
	pub(t, s, ConfigCommand{Key: a, Content: "a3"})
	pub(t, s, ConfigCommand{Key: b, Content: "b2"})
	select {
	case <-w.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("no signal")
	}
	got := map[string]string{}
	for _, c := range w.Drain() {
		got[c.Key.DataID] = c.MD5
	}
	if got["a"] != ContentMD5("a3") || got["b"] != ContentMD5("b2") || len(got) != 2 {
		t.Fatalf("drained %v", got)
	}
	// The md5 is the one this client is served: a beta for its IP counts,
	// one for another IP does not signal a change of md5.
	pub(t, s, ConfigCommand{Key: a, Content: "beta", BetaIPs: []string{"10.0.0.5"}})
	if ch := w.Drain(); len(ch) != 1 || ch[0].MD5 != ContentMD5("beta") {
		t.Fatalf("beta for the watch's IP: %+v", ch)
	}
	pub(t, s, ConfigCommand{Key: b, Content: "beta", BetaIPs: []string{"10.0.0.6"}})
	if ch := w.Drain(); len(ch) != 1 || ch[0].MD5 != ContentMD5("b2") {
		t.Fatalf("beta for another IP: %+v", ch)
	}
	// A removal is an empty md5.
	s.Apply(&Command{Op: OpConfigRemove, Config: &ConfigCommand{Key: a}})
	if ch := w.Drain(); len(ch) != 1 || ch[0].MD5 != "" {
		t.Fatalf("removal: %+v", ch)
	}
	// Removed and closed watches hear nothing and are forgotten.
	w.Remove(b)
	pub(t, s, ConfigCommand{Key: b, Content: "b3"})
	if ch := w.Drain(); len(ch) != 0 {
		t.Fatalf("after Remove: %+v", ch)
	}
	w.Close()
	if len(s.cfg.watch.byKey) != 0 {
		t.Fatalf("closed watch still indexed: %v", s.cfg.watch.byKey)
	}
	if err := w.Add(a); err == nil {
		t.Fatal("Add on a closed watch succeeded")
	}
}

// TestConfigNode drives the Node API on one node: bounds, CAS and a watch
// woken by a publish.
func TestConfigNode(t *testing.T) {
	n := startNode(t, Options{Config: ConfigOptions{MaxContentBytes: 1024, History: 3}})
	w := n.ConfigWatch("127.0.0.1", "")
	defer w.Close()
	w.Add(ConfigKey{DataID: "app"})
	it, err := n.ConfigPublish(ConfigWrite{Key: ConfigKey{DataID: "app"}, Content: "x: 1", Type: "yaml", SrcIP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if it.MD5 != ContentMD5("x: 1") || it.Version == 0 || it.LastModified == 0 || it.Type != "yaml" {
		t.Fatalf("publish returned %+v", it)
	}
	// A publish without a type answers the type it kept.
	if it, err := n.ConfigPublish(ConfigWrite{Key: ConfigKey{DataID: "typed"}, Content: "{}", Type: "json"}); err != nil || it.Type != "json" {
		t.Fatalf("typed publish: %+v %v", it, err)
	}
	if it, err := n.ConfigPublish(ConfigWrite{Key: ConfigKey{DataID: "typed"}, Content: "{\"a\":1}"}); err != nil || it.Type != "json" {
		t.Fatalf("untyped republish: %+v %v", it, err)
	}
	select {
	case <-w.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("the watch was not woken by the publish")
	}
	if ch := w.Drain(); len(ch) != 1 || ch[0].MD5 != it.MD5 {
		t.Fatalf("drained %+v", ch)
	}
	var le *LimitError
	if _, err := n.ConfigPublish(ConfigWrite{Key: ConfigKey{DataID: "big"}, Content: strings.Repeat("x", 1025)}); !errors.As(err, &le) {
		t.Fatalf("oversized content: %v", err)
	}
	if _, err := n.ConfigPublish(ConfigWrite{Key: ConfigKey{DataID: "app"}, Content: "x: 2", CasMD5: "stale"}); !errors.Is(err, ErrConfigConflict) {
		t.Fatalf("stale cas: %v", err)
	}
	for i := 2; i <= 5; i++ {
		n.ConfigPublish(ConfigWrite{Key: ConfigKey{DataID: "app"}, Content: fmt.Sprintf("x: %d", i)})
	}
	h := n.ConfigHistory("", "", "app")
	if len(h) != 3 {
		t.Fatalf("history of %d, want 3", len(h))
	}
	if _, err := n.ConfigRollback(ConfigKey{DataID: "app"}, h[2].Version, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if it, _ := n.ConfigGet("public", "DEFAULT_GROUP", "app", "", ""); it.Content != "x: 3" {
		t.Fatalf("after rollback %q", it.Content)
	}
	if err := n.ConfigRemove(ConfigWrite{Key: ConfigKey{DataID: "app"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.ConfigGet("", "", "app", "", ""); ok {
		t.Fatal("removed config still served")
	}
}

// TestConfigCluster: configurations published on the leader reach every
// node, a follower refuses writes as the gRPC naming writes do, and a
// node restarted from its data dir (snapshot and log) has them again.
func TestConfigCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the three-node cluster")
	}
	base := t.TempDir()
	type spec struct{ http, raft, dir string }
	specs := make([]spec, 3)
	for i := range specs {
		specs[i] = spec{freeAddr(t), freeAddr(t), filepath.Join(base, fmt.Sprint(i))}
	}
	nodes := make([]*Node, 3)
	nodes[0] = clusterNode(t, specs[0].http, specs[0].raft, specs[0].dir, nil)
	waitFor(t, 5*time.Second, "bootstrap leader", nodes[0].IsLeader)
	for i := 1; i < 3; i++ {
		nodes[i] = clusterNode(t, specs[i].http, specs[i].raft, specs[i].dir, []string{specs[0].http})
	}
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.Kill()
			}
		}
	}()
	waitFor(t, 10*time.Second, "three members", func() bool { return len(nodes[0].Members()) == 3 })
	leader := nodes[0]
	// A follower's watch is woken by the leader's publish.
	w := nodes[2].ConfigWatch("", "")
	defer w.Close()
	w.Add(ConfigKey{Group: "g", DataID: "d"})
	var last ConfigItem
	for i := 0; i < 5; i++ {
		it, err := leader.ConfigPublish(ConfigWrite{Key: ConfigKey{Namespace: "prod", Group: "g", DataID: fmt.Sprint("k", i)}, Content: fmt.Sprint("v", i)})
		if err != nil {
			t.Fatal(err)
		}
		last = it
	}
	it, err := leader.ConfigPublish(ConfigWrite{Key: ConfigKey{Group: "g", DataID: "d"}, Content: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("the follower's watch was not woken")
	}
	if ch := w.Drain(); len(ch) != 1 || ch[0].MD5 != it.MD5 {
		t.Fatalf("follower drained %+v", ch)
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, "configs on "+n.ID(), func() bool {
			got, ok := n.ConfigGet("prod", "g", "k4", "", "")
			return ok && got.MD5 == last.MD5 && len(n.ConfigList("prod", "g")) == 5
		})
	}
	// A follower sends Node API writes on to the leader: a removal, a
	// stale casMd5 (refused as a conflict), a publish and a rollback.
	if err := nodes[1].ConfigRemove(ConfigWrite{Key: ConfigKey{Namespace: "prod", Group: "g", DataID: "k0"}}); err != nil {
		t.Fatalf("removal through a follower: %v", err)
	}
	if _, ok := leader.ConfigGet("prod", "g", "k0", "", ""); ok {
		t.Fatal("the leader still has k0 after a follower removed it")
	}
	if _, err := nodes[1].ConfigPublish(ConfigWrite{Key: ConfigKey{Group: "g", DataID: "d"}, Content: "x", CasMD5: "stale"}); !errors.Is(err, ErrConfigConflict) {
		t.Fatalf("stale casMd5 through a follower: %v, want ErrConfigConflict", err)
	}
	fit, err := nodes[2].ConfigPublish(ConfigWrite{Key: ConfigKey{Group: "g", DataID: "d"}, Content: "from a follower", Type: "text", SrcIP: "10.1.2.3"})
	if err != nil || fit.MD5 != ContentMD5("from a follower") || fit.Version == 0 {
		t.Fatalf("publish through a follower: %+v %v", fit, err)
	}
	if _, err := nodes[2].ConfigRollback(ConfigKey{Group: "g", DataID: "d"}, it.Version, ""); err != nil {
		t.Fatalf("rollback through a follower: %v", err)
	}
	if got, _ := leader.ConfigGet("", "g", "d", "", ""); got.Content != "hello" {
		t.Fatalf("leader after a follower's rollback: %q", got.Content)
	}
	if _, err := nodes[2].ConfigRollback(ConfigKey{Group: "g", DataID: "d"}, 999999, ""); !errors.Is(err, ErrConfigNotFound) {
		t.Fatalf("rollback to a missing version through a follower: %v", err)
	}
	// The HTTP API forwards a follower's writes to the leader.
	if code, body, _ := nacosDo(t, "POST", "http://"+nodes[1].ID()+"/nacos/v1/cs/configs", url.Values{"dataId": {"fwd"}, "content": {"via follower"}}, nil); code != 200 || body != "true" {
		t.Fatalf("publish through a follower: %d %q", code, body)
	}
	if got, ok := leader.ConfigGet("", "", "fwd", "", ""); !ok || got.Content != "via follower" || leader.ConfigHistory("", "", "fwd")[0].SrcIP != "127.0.0.1" {
		t.Fatalf("leader after a forwarded publish: %+v", got)
	}
	// Snapshot the follower, restart it on its data dir: the configs and
	// the history come back.
	if err := nodes[1].raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	nodes[1].Kill()
	nodes[1] = nil
	leader.ConfigPublish(ConfigWrite{Key: ConfigKey{Group: "g", DataID: "d"}, Content: "after"})
	nodes[1] = clusterNode(t, specs[1].http, specs[1].raft, specs[1].dir, []string{specs[0].http})
	waitFor(t, 15*time.Second, "the restarted node to catch up", func() bool {
		got, ok := nodes[1].ConfigGet("", "g", "d", "", "")
		return ok && got.Content == "after" && len(nodes[1].ConfigList("prod", "")) == 4 && len(nodes[1].ConfigHistory("", "g", "d")) == 4
	})
}

// TestConfigForwardToken: a follower sends a Node API write on with the
// client's token when the front end passes one, so the leader refuses a
// client the follower would not vouch for; without one it vouches with
// the admin token.
func TestConfigForwardToken(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the two-node cluster")
	}
	o := Options{AdminToken: "adm", NamespaceTokens: map[string]string{"prod": "p-secret"}}
	leader := startNode(t, o)
	o.Join = []string{leader.ID()}
	follower := startNode(t, o)
	waitFor(t, 10*time.Second, "the follower to join", func() bool { return len(leader.Members()) == 2 && follower.Leader() == leader.ID() })
	k := ConfigKey{Namespace: "prod", DataID: "db"}
	var he *httpError
	if _, err := follower.ConfigPublish(ConfigWrite{Key: k, Content: "x", Token: "wrong"}); !errors.As(err, &he) || he.code != 403 {
		t.Fatalf("a wrong client token through the follower: %v, want 403", err)
	}
	if _, err := follower.ConfigPublish(ConfigWrite{Key: k, Content: "x", Token: "p-secret"}); err != nil {
		t.Fatalf("the namespace's token through the follower: %v", err)
	}
	if err := follower.ConfigRemove(ConfigWrite{Key: k, Token: "wrong"}); !errors.As(err, &he) || he.code != 403 {
		t.Fatalf("a removal with a wrong token: %v, want 403", err)
	}
	if _, err := follower.ConfigPublish(ConfigWrite{Key: k, Content: "y"}); err != nil {
		t.Fatalf("a vouched write through the follower: %v", err)
	}
	if it, _ := leader.ConfigGet("prod", "", "db", "", ""); it.Content != "y" {
		t.Fatalf("leader has %q", it.Content)
	}
}
