// Package discovery is the one bridge from a strata registry in other
// processes to the roles that read it. It feeds pools: a Provider
// follows one registry service through the Go SDK (pkg/client, blocking
// queries) and calls the pool's Update with the service's healthy, enabled
// instances after every change, so a pool follows registrations,
// deregistrations and expired heartbeats within a second, with no reload.
//
// And it feeds the dns role's dns.registry with servers: Namespaces
// follows whole namespaces, one watch stream each (the SDK's
// WatchNamespace), and answers as a regapi.Source, the interface the dns
// role also reads the registry of its own process through.
//
// It lives apart from internal/upstream because the SDK itself builds on
// upstream (through balance): upstream cannot import the client.
//
// While every registry server is unreachable the pool keeps the backends it
// last had; the SDK's disk cache (cache_dir) seeds a pool at start when the
// registry cannot be reached then.
package discovery
