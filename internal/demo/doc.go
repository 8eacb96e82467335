// Package demo is `strata demo`: the whole chain — dns → l4 → l7 → app,
// with a registry inside — on loopback, from one command. Run is the
// supervisor: it serves the edge (registry, dns, l4) in its own process
// from the "edge" template of demo.yaml, starts the two l7 nodes and six
// app instances as child processes of the strata binary, restarts those
// that die, waits until the chain answers, prints what to try, and drives
// a small, bounded stream of requests through it. App is one app instance.
//
// The files: demo.go (options, the edge and the printed intro),
// children.go (the child processes), ready.go (readiness polling),
// traffic.go (the traffic generator), app.go (an app instance), lines.go
// (the children's logs, interleaved by line).
package demo
