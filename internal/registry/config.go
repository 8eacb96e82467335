package registry

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// The config service (Nacos ConfigService, Alibaba's Diamond): namespace →
// group → dataId → content, replicated through Raft like instances.
// config.go is the model and its bounds, config_store.go the state machine,
// config_watch.go the change notifications, config_node.go the API that
// the HTTP and gRPC front ends call.

// ConfigKey names one configuration: namespace (Nacos's tenant) → group →
// dataId.
type ConfigKey struct {
	Namespace string `json:"namespace"`
	Group     string `json:"group"`
	DataID    string `json:"data_id"`
}

func (k ConfigKey) String() string { return k.Namespace + "/" + k.Group + "/" + k.DataID }

// withDefaults fills an empty group and maps the namespaces "" and
// "public" to one, as Nacos does.
func (k ConfigKey) withDefaults() ConfigKey {
	if k.Namespace == "" {
		k.Namespace = DefaultNamespace
	}
	if k.Group == "" {
		k.Group = DefaultGroup
	}
	return k
}

// Validate rejects keys that cannot name a configuration. Nacos allows
// letters, digits and "-_.:" in dataId and group; strata refuses only what
// would break its own paths and the long-poll wire format (the ^1 and ^2
// separators, '/', NUL) and overlong names.
func (k ConfigKey) Validate() error {
	if k.DataID == "" {
		return fmt.Errorf("dataId is empty")
	}
	for _, s := range []string{k.Namespace, k.Group, k.DataID} {
		if len(s) > 256 {
			return fmt.Errorf("name %.20q… is longer than 256 bytes", s)
		}
		if strings.ContainsAny(s, "/\x00\x01\x02") {
			return fmt.Errorf("name %q contains '/', NUL or a control character of the listener format", s)
		}
	}
	return nil
}

// ContentMD5 is the md5 Nacos gives a content: lowercase hex of its bytes.
func ContentMD5(content string) string {
	s := md5.Sum([]byte(content))
	return hex.EncodeToString(s[:])
}

// ConfigVariant is one content of a configuration: the main one, the beta
// (gray) one served to a set of client IPs, or the one of a tag.
type ConfigVariant struct {
	Content string `json:"content"`
	MD5     string `json:"md5"`
	// Type is the content's format as Nacos clients name it (text, yaml,
	// json, properties, xml, html); informational.
	Type string `json:"type,omitempty"`
	// LastModified is when it was published (Unix milliseconds, the
	// leader's clock).
	LastModified int64 `json:"last_modified"`
	// Version is the config index of the publish: it grows with every
	// change of any configuration.
	Version uint64 `json:"version"`
	// BetaIPs are the client IPs the beta variant is served to.
	BetaIPs []string `json:"beta_ips,omitempty"`
}

// ConfigItem is what a client is served for a key: the variant that
// applies to it and which one that is.
type ConfigItem struct {
	Key ConfigKey
	ConfigVariant
	// Beta is set when the beta variant was served (the client's IP is in
	// BetaIPs); Tag when a tag's.
	Beta bool
	Tag  string
}

// ConfigVersion is one entry of a configuration's history: a publish (the
// content it stored) or a removal.
type ConfigVersion struct {
	// Version is the config index of the change; rollback names it.
	Version uint64 `json:"version"`
	// Op is "publish", "rollback" or "remove".
	Op           string `json:"op"`
	Content      string `json:"content,omitempty"`
	MD5          string `json:"md5,omitempty"`
	Type         string `json:"type,omitempty"`
	LastModified int64  `json:"last_modified"`
	// SrcIP is the address of the client that made the change.
	SrcIP string `json:"src_ip,omitempty"`
}

// ConfigOptions bound the config service (registry.config in the
// config file); zero fields take the defaults.
type ConfigOptions struct {
	// History is how many versions of each configuration are kept for
	// history and rollback (default 20).
	History int
	// MaxContentBytes bounds one content (default 100 KiB, the size Nacos
	// documents as the limit of a configuration; the Nacos server itself
	// accepts up to 10 MiB, which would make for heavy Raft entries and
	// pushes). It cannot be set above MaxConfigContentBytes.
	MaxContentBytes int
	// MaxConfigs bounds the configurations of one namespace (default
	// 10000).
	MaxConfigs int
}

// Defaults and ceilings of ConfigOptions.
const (
	DefaultConfigHistory         = 20
	DefaultConfigMaxContentBytes = 100 << 10
	DefaultConfigMaxConfigs      = 10000
	// MaxConfigContentBytes is the ceiling of MaxContentBytes: a content
	// travels whole in one Raft entry and one HTTP body (maxBody).
	MaxConfigContentBytes = 512 << 10
)

func (o ConfigOptions) withDefaults() ConfigOptions {
	if o.History <= 0 {
		o.History = DefaultConfigHistory
	}
	if o.MaxContentBytes <= 0 {
		o.MaxContentBytes = DefaultConfigMaxContentBytes
	}
	if o.MaxContentBytes > MaxConfigContentBytes {
		o.MaxContentBytes = MaxConfigContentBytes
	}
	if o.MaxConfigs <= 0 {
		o.MaxConfigs = DefaultConfigMaxConfigs
	}
	return o
}

// ErrConfigConflict is wrapped by the error of a publish whose casMd5 did
// not match the current md5 (HTTP 409).
var ErrConfigConflict = errors.New("config changed meanwhile")

// ErrConfigNotFound is wrapped by the error of a rollback to a version
// that is not in the history, or of a write to a variant that does not
// exist (HTTP 404).
var ErrConfigNotFound = errors.New("config not found")

// configErr is an error with an HTTP status that errors.Is also matches
// against a sentinel.
func configErr(code int, sentinel error, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...), wrapped: sentinel}
}

// validateIPs checks the beta IPs: each is an address, at most 1000 of
// them.
func validateIPs(ips []string) error {
	if len(ips) > 1000 {
		return fmt.Errorf("%d beta IPs, more than 1000", len(ips))
	}
	for _, ip := range ips {
		if ip == "" || len(ip) > 64 || strings.ContainsAny(ip, ", \x00") {
			return fmt.Errorf("beta IP %q is not an address", ip)
		}
	}
	return nil
}
