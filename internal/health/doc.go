// Package health decides whether backends may take traffic, actively (by
// probing them) and passively (by watching the traffic the data planes
// send them).
//
// # Checkers are stateless; state lives once, in the monitor
//
// A Checker probes one address once and returns an error or nil: TCP
// connects, HTTP sends a request and judges its status and body, UDP sends
// a datagram, DNS asks a question, Exec runs a command (keepalived's
// MISC_CHECK). None of them remembers anything between calls, retries, or
// knows about timing. Everything that turns single results into a verdict —
// interval, jitter, timeout, rise and fall — is written once, in Monitor,
// so that every protocol gets the same semantics and a new protocol is one
// small file with nothing to get wrong but the probe itself. It also makes
// checkers trivial to test: one call against a real server on
// 127.0.0.1:0, one result.
//
// One Monitor watches one pool. It follows the pool's membership through
// its snapshots, runs one loop per backend, and calls SetHealthy on the
// pool only when a backend's health flips: fall failures in a row take a
// healthy backend down, rise passes in a row bring it back, as in HAProxy.
// A backend starts healthy, as the pool assumes. Status and Statuses give
// the admin API the last result, error and run length of every backend.
//
// Passive ejection (Passive) is fed by the data planes after every
// connection or request. It is lock-free and allocation-free on the hot
// path; a backend that fails MaxFails times in a row is ejected through
// the pool for an exponentially growing time.
//
// Time comes from a Clock, and jitter from an injected random source, so
// tests move time themselves instead of sleeping.
//
// # Wiring
//
//	c, err := health.New(poolCfg.Health)
//	if err != nil { ... }
//	o := health.MonitorOptionsFrom(poolCfg.Health)
//	o.Logger = logger
//	mon := health.NewMonitor(pool, c, o)
//	go mon.Run(ctx)
//
//	passive := health.NewPassive(pool, health.PassiveOptionsFrom(poolCfg.Passive))
//	// in the data plane, after each request to b:
//	passive.Success(b) // or passive.Failure(b)
package health
