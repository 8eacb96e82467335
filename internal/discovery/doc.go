// Package discovery feeds pools from the strata registry: a Provider
// follows one registry service through the Go SDK (pkg/client, blocking
// queries) and calls the pool's Update with the service's healthy, enabled
// instances after every change, so a pool follows registrations,
// deregistrations and expired heartbeats within a second, with no reload.
//
// It lives apart from internal/upstream because the SDK itself builds on
// upstream (through balance): upstream cannot import the client.
//
// While every registry server is unreachable the pool keeps the backends it
// last had; the SDK's disk cache (cache_dir) seeds a pool at start when the
// registry cannot be reached then.
package discovery
