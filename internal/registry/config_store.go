package registry

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
)

// The config operations of the replicated state machine.
const (
	OpConfigPublish  Op = "config_publish"  // store Config's content in its key (main, beta or tag)
	OpConfigRemove   Op = "config_remove"   // remove the key, or only its beta or tag variant
	OpConfigRollback Op = "config_rollback" // publish the content of a history version again
)

func isConfigOp(op Op) bool {
	return op == OpConfigPublish || op == OpConfigRemove || op == OpConfigRollback
}

// ConfigCommand is the payload of a config operation. The leader stamps
// Time and the bounds before proposing, so that every node, whatever its
// own clock and configuration, applies the entry alike.
type ConfigCommand struct {
	Key     ConfigKey `json:"key"`
	Content string    `json:"content,omitempty"`
	Type    string    `json:"type,omitempty"`
	// BetaIPs, on a publish, make it the beta variant served to those
	// client IPs only.
	BetaIPs []string `json:"beta_ips,omitempty"`
	// Tag, on a publish or removal, names the tag variant it concerns.
	Tag string `json:"tag,omitempty"`
	// Beta, on a removal, removes the beta variant only.
	Beta bool `json:"beta,omitempty"`
	// CasMD5, on a publish, makes it apply only while the variant's
	// current md5 is this one (Nacos's casMd5; a variant that does not
	// exist yet is created, as Nacos does).
	CasMD5 string `json:"cas_md5,omitempty"`
	// Version, on a rollback, is the history version to publish again.
	Version uint64 `json:"version,omitempty"`
	// SrcIP is the client that asked, for the history.
	SrcIP string `json:"src_ip,omitempty"`
	// Time is the leader's clock at proposal (Unix milliseconds).
	Time int64 `json:"time"`
	// History and MaxConfigs are the leader's bounds (0: unbounded, for
	// entries written without them).
	History    int `json:"history,omitempty"`
	MaxConfigs int `json:"max_configs,omitempty"`
}

// validate checks a config command before it is proposed.
func (c *ConfigCommand) validate(op Op) error {
	c.Key = c.Key.withDefaults()
	if err := c.Key.Validate(); err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	if len(c.Tag) > 128 {
		return errf(http.StatusBadRequest, "tag %.20q… is longer than 128 bytes", c.Tag)
	}
	if op == OpConfigPublish {
		if err := validateIPs(c.BetaIPs); err != nil {
			return errf(http.StatusBadRequest, "%v", err)
		}
		if len(c.BetaIPs) > 0 && c.Tag != "" {
			return errf(http.StatusBadRequest, "a publish is either beta (betaIps) or tagged, not both")
		}
		if len(c.Type) > 32 {
			return errf(http.StatusBadRequest, "type %.20q… is longer than 32 bytes", c.Type)
		}
	}
	return nil
}

// configEntry is the store's record of one configuration. Variants are
// never changed in place (a publish replaces them), so readers and
// snapshots keep pointers to them after dropping the lock.
type configEntry struct {
	main *ConfigVariant
	beta *ConfigVariant
	tags map[string]*ConfigVariant
}

func (e *configEntry) empty() bool { return e.main == nil && e.beta == nil && len(e.tags) == 0 }

// served is the variant a client at ip asking for tag gets: the tag's
// when a tag is asked for (nothing when it has none, as Nacos answers),
// else the beta one when ip is among its IPs, else the main one.
func (e *configEntry) served(ip, tag string) (v *ConfigVariant, beta bool) {
	if e == nil {
		return nil, false
	}
	if tag != "" {
		return e.tags[tag], false
	}
	if b := e.beta; b != nil && ip != "" {
		for _, x := range b.BetaIPs {
			if x == ip {
				return b, true
			}
		}
	}
	return e.main, false
}

// configState is the config half of the Store. It has its own lock and
// index: config changes neither wake naming watchers nor move the naming
// index that blocking queries compare.
type configState struct {
	mu      sync.RWMutex
	index   uint64
	entries map[ConfigKey]*configEntry
	// history holds the last versions of each key's main content, oldest
	// first; a removed key's history stays (so a removal can be rolled
	// back) until too many removed keys have one.
	history map[ConfigKey][]ConfigVersion
	// nsCount counts each namespace's configurations, for MaxConfigs.
	nsCount map[string]int
	watch   configWatchers
}

func newConfigState() *configState {
	return &configState{
		entries: map[ConfigKey]*configEntry{}, history: map[ConfigKey][]ConfigVersion{}, nsCount: map[string]int{},
		watch: configWatchers{byKey: map[ConfigKey]map[*ConfigWatch]struct{}{}},
	}
}

// apply applies one config command and returns the config index.
func (s *configState) apply(op Op, c *ConfigCommand) (uint64, error) {
	if c == nil {
		return 0, fmt.Errorf("%s without a config", op)
	}
	k := c.Key.withDefaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	switch op {
	case OpConfigPublish:
		err = s.publish(k, c, "publish", c.Content, c.Type)
	case OpConfigRemove:
		err = s.remove(k, c)
	case OpConfigRollback:
		err = s.rollback(k, c)
	default:
		err = fmt.Errorf("unknown config operation %q", op)
	}
	return s.index, err
}

// publish stores content in the variant c names. op is the history's
// name for the change.
func (s *configState) publish(k ConfigKey, c *ConfigCommand, op, content, typ string) error {
	e := s.entries[k]
	if e == nil && c.MaxConfigs > 0 && s.nsCount[k.Namespace] >= c.MaxConfigs {
		return limitErr("namespace %q already has %d configurations, the most registry.config.max_configs allows", k.Namespace, c.MaxConfigs)
	}
	var cur *ConfigVariant
	switch {
	case e == nil:
	case c.Tag != "":
		cur = e.tags[c.Tag]
	case len(c.BetaIPs) > 0:
		cur = e.beta
	default:
		cur = e.main
	}
	if c.CasMD5 != "" && cur != nil && cur.MD5 != c.CasMD5 {
		return configErr(http.StatusConflict, ErrConfigConflict, "config %s has md5 %s, not the casMd5 %s: it changed meanwhile", k, cur.MD5, c.CasMD5)
	}
	if typ == "" && cur != nil {
		typ = cur.Type
	}
	if e == nil {
		e = &configEntry{}
		s.entries[k] = e
		s.nsCount[k.Namespace]++
	}
	s.index++
	v := &ConfigVariant{Content: content, MD5: ContentMD5(content), Type: typ, LastModified: c.Time, Version: s.index}
	switch {
	case c.Tag != "":
		if e.tags == nil {
			e.tags = map[string]*ConfigVariant{}
		}
		e.tags[c.Tag] = v
	case len(c.BetaIPs) > 0:
		v.BetaIPs = c.BetaIPs
		e.beta = v
	default:
		e.main = v
		s.record(k, c, ConfigVersion{Version: v.Version, Op: op, Content: content, MD5: v.MD5, Type: typ, LastModified: c.Time, SrcIP: c.SrcIP})
	}
	s.watch.notify(k, e)
	return nil
}

// remove removes the key, or its beta or tag variant. Removing what does
// not exist is not an error (Nacos answers true).
func (s *configState) remove(k ConfigKey, c *ConfigCommand) error {
	e := s.entries[k]
	if e == nil {
		return nil
	}
	switch {
	case c.Tag != "":
		if e.tags[c.Tag] == nil {
			return nil
		}
		delete(e.tags, c.Tag)
	case c.Beta:
		if e.beta == nil {
			return nil
		}
		e.beta = nil
	default:
		if e.main != nil {
			s.record(k, c, ConfigVersion{Version: s.index + 1, Op: "remove", LastModified: c.Time, SrcIP: c.SrcIP})
		}
		e.main, e.beta, e.tags = nil, nil, nil
	}
	s.index++
	if e.empty() {
		delete(s.entries, k)
		s.nsCount[k.Namespace]--
		s.trimRemoved(c.MaxConfigs)
		e = nil
	}
	s.watch.notify(k, e)
	return nil
}

// rollback publishes the content of a version from the history again.
func (s *configState) rollback(k ConfigKey, c *ConfigCommand) error {
	for _, v := range s.history[k] {
		if v.Version == c.Version {
			if v.Op == "remove" {
				return configErr(http.StatusBadRequest, nil, "version %d of %s is a removal; roll back to a publish (or remove the config)", c.Version, k)
			}
			p := *c
			p.Tag, p.BetaIPs, p.CasMD5 = "", nil, ""
			return s.publish(k, &p, "rollback", v.Content, v.Type)
		}
	}
	return configErr(http.StatusNotFound, ErrConfigNotFound, "config %s has no version %d in its history", k, c.Version)
}

// record appends a version to k's history, keeping the last c.History.
func (s *configState) record(k ConfigKey, c *ConfigCommand, v ConfigVersion) {
	h := append(s.history[k], v)
	if c.History > 0 && len(h) > c.History {
		// A new slice, not a reslice: a snapshot may hold the old one.
		h = append([]ConfigVersion(nil), h[len(h)-c.History:]...)
	}
	s.history[k] = h
}

// trimRemoved drops the histories of the longest-removed keys while more
// than max removed keys keep one, so that creating and removing keys
// cannot grow the store without end.
func (s *configState) trimRemoved(max int) {
	if max <= 0 || len(s.history)-len(s.entries) <= max {
		return
	}
	var gone []ConfigKey
	for k := range s.history {
		if s.entries[k] == nil {
			gone = append(gone, k)
		}
	}
	if len(gone) <= max {
		return
	}
	last := func(k ConfigKey) uint64 { h := s.history[k]; return h[len(h)-1].Version }
	sort.Slice(gone, func(i, j int) bool { return last(gone[i]) < last(gone[j]) })
	for _, k := range gone[:len(gone)-max] {
		delete(s.history, k)
	}
}

// get returns what a client at ip asking for tag is served for k.
func (s *configState) get(k ConfigKey, ip, tag string) (ConfigItem, bool) {
	k = k.withDefaults()
	s.mu.RLock()
	v, beta := s.entries[k].served(ip, tag)
	s.mu.RUnlock()
	if v == nil {
		return ConfigItem{Key: k}, false
	}
	return ConfigItem{Key: k, ConfigVariant: *v, Beta: beta, Tag: tag}, true
}

// variant returns the stored variant a write named (the tag's, the
// beta or the main one), or nil.
func (s *configState) variant(k ConfigKey, tag string, beta bool) *ConfigVariant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.entries[k.withDefaults()]
	switch {
	case e == nil:
		return nil
	case tag != "":
		return e.tags[tag]
	case beta:
		return e.beta
	}
	return e.main
}

// versions returns k's history, newest first.
func (s *configState) versions(k ConfigKey) []ConfigVersion {
	k = k.withDefaults()
	s.mu.RLock()
	h := s.history[k]
	s.mu.RUnlock()
	out := make([]ConfigVersion, len(h))
	for i := range h {
		out[len(h)-1-i] = h[i]
	}
	return out
}

// list returns the keys of a namespace (and group, when not empty),
// sorted.
func (s *configState) list(namespace, group string) []ConfigKey {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	s.mu.RLock()
	var ks []ConfigKey
	for k := range s.entries {
		if k.Namespace == namespace && (group == "" || k.Group == group) {
			ks = append(ks, k)
		}
	}
	s.mu.RUnlock()
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Group != ks[j].Group {
			return ks[i].Group < ks[j].Group
		}
		return ks[i].DataID < ks[j].DataID
	})
	return ks
}

// configSnapshot is the serialised config state, a field of snapshotData
// that snapshots written before the config service lack (they restore to
// an empty config state).
type configSnapshot struct {
	Index   uint64            `json:"index"`
	Entries []configSnapEntry `json:"entries,omitempty"`
	History []configSnapHist  `json:"history,omitempty"`
}

type configSnapEntry struct {
	Key  ConfigKey                 `json:"key"`
	Main *ConfigVariant            `json:"main,omitempty"`
	Beta *ConfigVariant            `json:"beta,omitempty"`
	Tags map[string]*ConfigVariant `json:"tags,omitempty"`
}

type configSnapHist struct {
	Key      ConfigKey       `json:"key"`
	Versions []ConfigVersion `json:"versions"`
}

// capture takes a picture of the state that can be encoded later: the
// variants are immutable, the tag maps are copied, and history slices are
// replaced rather than changed in place once they are full.
func (s *configState) capture() *configSnapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := &configSnapshot{Index: s.index, Entries: make([]configSnapEntry, 0, len(s.entries)), History: make([]configSnapHist, 0, len(s.history))}
	for k, e := range s.entries {
		se := configSnapEntry{Key: k, Main: e.main, Beta: e.beta}
		if len(e.tags) > 0 {
			se.Tags = make(map[string]*ConfigVariant, len(e.tags))
			for t, v := range e.tags {
				se.Tags[t] = v
			}
		}
		d.Entries = append(d.Entries, se)
	}
	for k, h := range s.history {
		d.History = append(d.History, configSnapHist{Key: k, Versions: h[:len(h):len(h)]})
	}
	return d
}

// load replaces the state with d (nil: empty) and tells every watcher of
// a key its md5 now, since anything may have changed.
func (s *configState) load(d *configSnapshot) {
	entries, history, ns := map[ConfigKey]*configEntry{}, map[ConfigKey][]ConfigVersion{}, map[string]int{}
	var index uint64
	if d != nil {
		index = d.Index
		for _, se := range d.Entries {
			e := &configEntry{main: se.Main, beta: se.Beta, tags: se.Tags}
			if e.empty() {
				continue
			}
			entries[se.Key] = e
			ns[se.Key.Namespace]++
		}
		for _, h := range d.History {
			if len(h.Versions) > 0 {
				history[h.Key] = h.Versions
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries, s.history, s.nsCount, s.index = entries, history, ns, index
	s.watch.notifyAll(func(k ConfigKey) *configEntry { return s.entries[k] })
}
