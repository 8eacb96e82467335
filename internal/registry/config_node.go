package registry

import (
	"net/http"
	"time"
)

// The config service's API on a Node, for the HTTP and Nacos gRPC front
// ends. It checks no tokens: the front ends apply the auth model (reads
// with namespaceOK, writes with writeOK) before they call it.
//
// Writes must reach the leader: on a follower these methods send them on
// to it (config_forward.go), so a Nacos 2 client connected to any node can
// publish. (The HTTP API forwards whole requests before it gets here.)

// ConfigWrite is a publish or a removal.
type ConfigWrite struct {
	Key     ConfigKey
	Content string
	// Type is the content's format (text, yaml, json, properties …);
	// empty keeps the current one ("text" for a new configuration is the
	// front ends' default, as Nacos's).
	Type string
	// BetaIPs make a publish the beta variant, served to those client IPs
	// only.
	BetaIPs []string
	// Tag makes a publish or removal concern that tag's variant.
	Tag string
	// Beta makes a removal remove the beta variant only.
	Beta bool
	// CasMD5 makes a publish apply only while the variant's md5 is this
	// (a conflict is an error that wraps ErrConfigConflict).
	CasMD5 string
	// SrcIP is the client's address, kept in the history.
	SrcIP string
	// Token is the client's token, when the front end has one: a
	// follower sends the write on to the leader with it, so the leader
	// checks the client exactly as if it had called the leader (a
	// follower grants nothing a client lacks). Empty, the follower
	// vouches with the node's own token (config_forward.go).
	Token string
}

// ConfigGet returns what a client at clientIP asking for tag is served
// for namespace/group/dataId (namespace "" is public, group "" is
// DEFAULT_GROUP): the tag's variant when tag is set, else the beta one
// when clientIP is among its IPs, else the main one. ok is false when
// there is none. It reads this node's store (a follower may be a moment
// behind).
func (n *Node) ConfigGet(namespace, group, dataID, clientIP, tag string) (ConfigItem, bool) {
	return n.store.cfg.get(ConfigKey{namespace, group, dataID}, clientIP, tag)
}

// ConfigList returns the configuration keys of a namespace (and group,
// when not empty), sorted.
func (n *Node) ConfigList(namespace, group string) []ConfigKey {
	return n.store.cfg.list(namespace, group)
}

// ConfigPublish stores w.Content through Raft and returns the variant it
// stored. It refuses contents over the node's MaxContentBytes and a new
// key in a namespace at MaxConfigs (LimitError), an empty content (as
// Nacos does), and a casMd5 that no longer matches (ErrConfigConflict).
func (n *Node) ConfigPublish(w ConfigWrite) (ConfigItem, error) {
	if w.Content == "" {
		// Nacos refuses a blank content on every API.
		return ConfigItem{}, errf(http.StatusBadRequest, "content is empty")
	}
	if max := n.opts.Config.MaxContentBytes; len(w.Content) > max {
		return ConfigItem{}, limitErr("config content is %d bytes, more than registry.config.max_content_bytes (%d)", len(w.Content), max)
	}
	if it, forwarded, err := n.forwardPublish(w); forwarded {
		return it, err
	}
	c := n.configCommand(w)
	idx, err := n.Propose(&Command{Op: OpConfigPublish, Config: c})
	if err != nil {
		return ConfigItem{}, err
	}
	beta := len(c.BetaIPs) > 0
	// What was stored (with the type kept from the version before, when
	// w had none), unless a later write replaced it already.
	if v := n.store.cfg.variant(c.Key, c.Tag, beta); v != nil && v.Version == idx {
		return ConfigItem{Key: c.Key, ConfigVariant: *v, Beta: beta, Tag: c.Tag}, nil
	}
	v := ConfigVariant{Content: w.Content, MD5: ContentMD5(w.Content), Type: w.Type, LastModified: c.Time, Version: idx, BetaIPs: c.BetaIPs}
	return ConfigItem{Key: c.Key, ConfigVariant: v, Beta: beta, Tag: c.Tag}, nil
}

// ConfigRemove removes the configuration (all its variants), or only its
// beta variant (w.Beta) or a tag's (w.Tag). Removing what does not exist
// succeeds, as in Nacos.
func (n *Node) ConfigRemove(w ConfigWrite) error {
	w.Content, w.BetaIPs, w.CasMD5 = "", nil, ""
	if forwarded, err := n.forwardRemove(w); forwarded {
		return err
	}
	_, err := n.Propose(&Command{Op: OpConfigRemove, Config: n.configCommand(w)})
	return err
}

// ConfigHistory returns the last versions of a configuration's main
// content, newest first (registry.config.history of them); a removed
// configuration keeps its history.
func (n *Node) ConfigHistory(namespace, group, dataID string) []ConfigVersion {
	return n.store.cfg.versions(ConfigKey{namespace, group, dataID})
}

// ConfigRollback publishes the content of a version from the history
// again, as a new version. A version not in the history is an error that
// wraps ErrConfigNotFound.
func (n *Node) ConfigRollback(k ConfigKey, version uint64, srcIP string) (ConfigItem, error) {
	if it, forwarded, err := n.forwardRollback(k, version, srcIP); forwarded {
		return it, err
	}
	c := n.configCommand(ConfigWrite{Key: k, SrcIP: srcIP})
	c.Version = version
	if _, err := n.Propose(&Command{Op: OpConfigRollback, Config: c}); err != nil {
		return ConfigItem{}, err
	}
	it, _ := n.store.cfg.get(c.Key, "", "")
	return it, nil
}

// ConfigWatch starts a watch for a client at clientIP asking for tag
// (config_watch.go). The caller must Close it.
func (n *Node) ConfigWatch(clientIP, tag string) *ConfigWatch {
	return n.store.cfg.watch.newWatch(clientIP, tag)
}

// configCommand is w as a command stamped with the leader's clock and
// bounds.
func (n *Node) configCommand(w ConfigWrite) *ConfigCommand {
	return &ConfigCommand{
		Key: w.Key.withDefaults(), Content: w.Content, Type: w.Type, BetaIPs: w.BetaIPs, Tag: w.Tag, Beta: w.Beta,
		CasMD5: w.CasMD5, SrcIP: w.SrcIP, Time: time.Now().UnixMilli(),
		History: n.opts.Config.History, MaxConfigs: n.opts.Config.MaxConfigs,
	}
}
