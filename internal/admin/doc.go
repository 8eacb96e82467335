// Package admin is strata's admin listener: one HTTP server that reports
// the state of every pool as JSON, serves Prometheus metrics and pprof, and
// lets an operator drain, undrain, reweigh or park a backend at run time.
//
// Reads are open to whoever can reach the listener. Writes need a bearer
// token when one is configured; without a token they are allowed only when
// the listener is bound to a loopback address, so that a box reachable from
// the network never exposes an unauthenticated control plane. Writes are
// also refused when a browser marks them cross-origin, and tokenless writes
// when the Host header is not a loopback name, so that a web page the
// operator happens to have open cannot drive the API through the browser
// (CSRF, DNS rebinding).
//
// The admin listener holds no state of its own about pools: it asks its
// Source for the current pools on every call, because a reload swaps the
// runtime underneath it, and it reads the pools' immutable snapshots, so a
// status call or a scrape costs the data planes nothing.
//
// docs/admin.md documents every endpoint with examples.
package admin
