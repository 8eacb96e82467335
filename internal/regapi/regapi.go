// Package regapi is the service registry as its consumers read it: the
// key of a service, its instances, the answer to a query, and the
// interfaces a consumer reads through. It imports nothing, so a consumer
// (the dns role) depends on this and not on the registry's Raft node, and
// the two sources of answers — the registry role of this process
// (registry.Source) and a registry in other processes, followed over HTTP
// (discovery.Namespaces) — are interchangeable.
//
// The field names and JSON tags are the registry's HTTP API's, so an
// answer decodes into these types as it is.
package regapi

import (
	"net"
	"strconv"
)

// Key names a service: namespace → group → service.
type Key struct {
	Namespace string `json:"namespace"`
	Group     string `json:"group"`
	Service   string `json:"service"`
}

func (k Key) String() string { return k.Namespace + "/" + k.Group + "/" + k.Service }

// Instance is one endpoint of a service.
type Instance struct {
	IP        string            `json:"ip"`
	Port      int               `json:"port"`
	Cluster   string            `json:"cluster"`
	Weight    float64           `json:"weight"`
	Healthy   bool              `json:"healthy"`
	Enabled   bool              `json:"enabled"`
	Ephemeral bool              `json:"ephemeral"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Addr is ip:port.
func (in *Instance) Addr() string { return net.JoinHostPort(in.IP, strconv.Itoa(in.Port)) }

// Result is the answer about one service.
type Result struct {
	// Index is the service's change index: equal indexes, equal answers.
	Index     uint64     `json:"index"`
	Instances []Instance `json:"instances"`
	// Protected is true when the healthy share fell below the service's
	// protection threshold and the answer holds unhealthy instances too.
	Protected bool `json:"protected"`
	// Found is false when the service does not exist.
	Found bool `json:"found"`
}

// Resolver answers queries about services.
type Resolver interface {
	// Resolve returns the instances of a service that may take traffic,
	// with the service's protection threshold applied. An empty namespace
	// or group means the default one. found is false when the service
	// does not exist.
	Resolve(namespace, group, service string) (res Result, found bool)
	// Changed returns a channel that is closed at the next change of any
	// service, so a caller can rebuild what it derives from the registry.
	Changed() <-chan struct{}
}

// Source is a Resolver that also lists services, so a consumer can build
// every answer in advance (the dns role's names under svc.<domain>).
type Source interface {
	Resolver
	// Services lists the services of a namespace.
	Services(namespace string) []Key
}
