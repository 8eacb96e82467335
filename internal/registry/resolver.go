package registry

// Resolver is the small query interface other roles call (the dns role
// answers <service>.<group>.<namespace>.svc.<domain> from it). *Node
// implements it; the supervisor hands it out through Supervisor.Registry.
type Resolver interface {
	// Resolve returns the instances of a service that may take traffic,
	// with the service's protection threshold applied (Result.Protected
	// says when it stepped in). An empty namespace or group means the
	// default one. found is false when the service does not exist.
	Resolve(namespace, group, service string) (res Result, found bool)
	// Changed returns a channel that is closed at the next change of any
	// service, so a caller can rebuild what it derives from the registry.
	Changed() <-chan struct{}
}

var _ Resolver = (*Node)(nil)

// Resolve implements Resolver.
func (n *Node) Resolve(namespace, group, service string) (Result, bool) {
	q := Query{Key: Key{Namespace: namespace, Group: group, Service: service}, HealthyOnly: true}
	v, found := n.store.Get(q.Key)
	return Select(v, found, &q), found
}

// Changed implements Resolver.
func (n *Node) Changed() <-chan struct{} { return n.store.Changed() }
