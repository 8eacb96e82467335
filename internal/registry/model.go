package registry

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Defaults of the model, as Nacos has them, so Nacos clients that leave a
// field empty land where they expect.
const (
	DefaultNamespace = "public"
	DefaultGroup     = "DEFAULT_GROUP"
	DefaultCluster   = "DEFAULT"
)

// Key names a service: namespace → group → service.
type Key struct {
	Namespace string `json:"namespace"`
	Group     string `json:"group"`
	Service   string `json:"service"`
}

func (k Key) String() string { return k.Namespace + "/" + k.Group + "/" + k.Service }

// withDefaults fills an empty namespace or group.
func (k Key) withDefaults() Key {
	if k.Namespace == "" {
		k.Namespace = DefaultNamespace
	}
	if k.Group == "" {
		k.Group = DefaultGroup
	}
	return k
}

// Validate rejects keys that cannot name a service.
func (k Key) Validate() error {
	if k.Service == "" {
		return fmt.Errorf("service name is empty")
	}
	for _, s := range []string{k.Namespace, k.Group, k.Service} {
		if len(s) > 256 {
			return fmt.Errorf("name %.20q… is longer than 256 bytes", s)
		}
		if strings.ContainsAny(s, "/\x00") {
			return fmt.Errorf("name %q contains '/' or NUL", s)
		}
	}
	return nil
}

// Instance is one endpoint of a service.
type Instance struct {
	// IP and Port are where callers connect.
	IP   string `json:"ip"`
	Port int    `json:"port"`
	// Cluster is the zone or region the instance runs in (default DEFAULT).
	Cluster string `json:"cluster"`
	// Weight is the share of traffic relative to the others (Nacos: a
	// float; 0 takes no new traffic).
	Weight float64 `json:"weight"`
	// Healthy is what heartbeats (ephemeral) or server checks (persistent)
	// last concluded.
	Healthy bool `json:"healthy"`
	// Enabled is the operator's switch: a disabled instance gets no traffic.
	Enabled bool `json:"enabled"`
	// Ephemeral instances heartbeat and are removed when they stop;
	// persistent ones are checked by the servers, marked unhealthy when
	// they fail, and removed only by a deregistration (as in Nacos); the
	// limits bound how many there can be.
	Ephemeral bool `json:"ephemeral"`
	// Metadata are free labels (version=2, tags) that selectors and routes
	// match.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ID identifies the instance within its service.
func (in *Instance) ID() string {
	return in.IP + "#" + strconv.Itoa(in.Port) + "#" + in.Cluster
}

// Addr is ip:port.
func (in *Instance) Addr() string { return net.JoinHostPort(in.IP, strconv.Itoa(in.Port)) }

// normalize fills defaults and checks the fields.
func (in *Instance) normalize() error {
	if in.Cluster == "" {
		in.Cluster = DefaultCluster
	}
	if net.ParseIP(in.IP) == nil {
		return fmt.Errorf("instance ip %q is not an IP address", in.IP)
	}
	if in.Port < 1 || in.Port > 65535 {
		return fmt.Errorf("instance port %d is out of range 1-65535", in.Port)
	}
	if in.Weight < 0 || in.Weight > 10000 {
		return fmt.Errorf("instance weight %v is out of range 0-10000", in.Weight)
	}
	return nil
}

// Route is a gray-release rule: callers it matches are sent to the
// instances whose metadata match Select (for example version=2).
type Route struct {
	// Name identifies the rule in answers.
	Name string `json:"name"`
	// CallerTags, when set, match callers that carry every tag.
	CallerTags map[string]string `json:"caller_tags,omitempty"`
	// Percent, when above 0, matches that share of callers (0-100), chosen
	// by a stable hash of the caller's identity so that a caller stays on
	// its side of the split.
	Percent float64 `json:"percent,omitempty"`
	// Select is the metadata the matched callers' instances must have.
	Select map[string]string `json:"select"`
}

// Failover is a service's zone disaster-recovery policy.
type Failover struct {
	// Threshold: when the healthy share of the caller's zone falls below
	// it (0-1), other zones are added.
	Threshold float64 `json:"threshold,omitempty"`
	// Order lists, per zone, the other zones to add, most preferred first.
	// A zone without a list falls back to every other zone, by name.
	Order map[string][]string `json:"order,omitempty"`
}

// Service is the replicated settings of one service.
type Service struct {
	Key
	// ProtectThreshold (0-1): when the healthy share of the instances a
	// query considers falls below it, the query returns all of them,
	// healthy or not, so a false health signal cannot pile every caller
	// onto the few survivors.
	ProtectThreshold float64           `json:"protect_threshold"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	Failover         Failover          `json:"failover"`
	Routes           []Route           `json:"routes,omitempty"`
}

// validate checks the settings.
func (s *Service) validate() error {
	if err := s.Key.Validate(); err != nil {
		return err
	}
	if s.ProtectThreshold < 0 || s.ProtectThreshold > 1 {
		return fmt.Errorf("protect threshold %v is out of range 0-1", s.ProtectThreshold)
	}
	if s.Failover.Threshold < 0 || s.Failover.Threshold > 1 {
		return fmt.Errorf("failover threshold %v is out of range 0-1", s.Failover.Threshold)
	}
	for i, r := range s.Routes {
		if r.Percent < 0 || r.Percent > 100 {
			return fmt.Errorf("route %d (%s): percent %v is out of range 0-100", i, r.Name, r.Percent)
		}
		if len(r.Select) == 0 {
			return fmt.Errorf("route %d (%s): select is empty", i, r.Name)
		}
		if r.Percent == 0 && len(r.CallerTags) == 0 {
			return fmt.Errorf("route %d (%s): needs caller_tags or a percent", i, r.Name)
		}
	}
	return nil
}

// sortInstances orders instances by cluster, ip, port so answers are
// stable.
func sortInstances(s []Instance) {
	sort.Slice(s, func(i, j int) bool {
		a, b := &s[i], &s[j]
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.IP != b.IP {
			return a.IP < b.IP
		}
		return a.Port < b.Port
	})
}
