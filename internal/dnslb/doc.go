// Package dnslb is strata's authoritative DNS role: a weighted,
// health-aware DNS load balancer (GSLB).
//
// It serves zones of static records (from the config and from RFC 1035
// master files) and load-balanced names whose A, AAAA and SRV answers come
// from the healthy backends of strata's pools, by weight, with failover
// groups and views by client subnet (EDNS Client Subnet or the resolver's
// address).
//
// The hot path is built for throughput: a query is parsed in place (no
// miekg/dns unpacking), static answers are packed once when the config is
// applied, and a response is the query's own header and question followed
// by those prebuilt bytes, so the question's case is kept for free. A
// load-balanced answer reads the pool's snapshot with one atomic load and
// caches the addresses derived from it per snapshot. Zones swap atomically
// on reload; listeners whose address stays are kept.
//
// One file per concern: wire.go parses queries, zone.go holds the zone
// store, zonefile.go loads records, answer.go packs answers, balanced.go
// builds load-balanced answers, views.go maps clients to views, rrl.go
// limits response rates, handle.go dispatches a query, server.go and
// listen.go run the sockets, metrics.go exports counters.
package dnslb
