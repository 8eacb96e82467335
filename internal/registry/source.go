package registry

import "github.com/strata-lb/strata/internal/regapi"

// Source is the node as the consumers of internal/regapi read it (the dns
// role of this process): its answers in regapi's types, and the services
// of a namespace. It is a comparable value, equal for the same node, so a
// consumer notices a new node.
type Source struct{ *Node }

var _ regapi.Source = Source{}

// Resolve implements regapi.Resolver.
func (s Source) Resolve(namespace, group, service string) (regapi.Result, bool) {
	res, found := s.Node.Resolve(namespace, group, service)
	return consumerResult(&res), found
}

// Services implements regapi.Source.
func (s Source) Services(namespace string) []regapi.Key {
	ks := s.Node.Store().Services(namespace, "")
	out := make([]regapi.Key, len(ks))
	for i, k := range ks {
		out[i] = regapi.Key(k)
	}
	return out
}

// consumerResult is res as regapi has it: what a consumer needs of it.
func consumerResult(res *Result) regapi.Result {
	out := regapi.Result{Index: res.Index, Protected: res.Protected, Found: res.Found, Instances: make([]regapi.Instance, len(res.Instances))}
	for i, in := range res.Instances {
		out.Instances[i] = regapi.Instance(in)
	}
	return out
}
