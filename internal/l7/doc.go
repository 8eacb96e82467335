// Package l7 is strata's HTTP/1.1 load balancer: listeners with ordered
// host and path routes, each sending to a backend pool through the pool's
// picker.
//
// The client side is strata's own HTTP/1.1 server (h1server.go): strict
// RFC 9112 parsing, one goroutine per connection with no read-ahead, and
// the request and its buffers reused per connection; HTTP/2 connections
// are handed to golang.org/x/net/http2. The handler gets the
// *http.Request and http.ResponseWriter net/http would give it.
//
// The backend side is not net/http's Transport either: a request is
// forwarded on the handler's own goroutine over a pooled keep-alive
// connection, its head written directly and the response head parsed in
// place (see head.go), with the body copied straight to the
// ResponseWriter. That removes the Transport's two goroutines and channel
// hand-offs per connection and most of its allocations, which is where a
// plain httputil.ReverseProxy spends its time.
//
// Retries: a connect error is retried once on another backend for
// idempotent methods; a pooled connection the backend had already closed
// is retried on a fresh connection when the request can be replayed, and
// is probed before use when it cannot.
//
// Upgrade requests (WebSocket) get a backend connection of their own; on
// 101 the client connection is taken over (Hijack) and the two are
// joined byte for byte. Such tunnels survive Apply, and Shutdown waits for
// them until its deadline. Upgrade requests with a body are answered 501.
package l7
