// Package client is the Go SDK of the strata registry: applications
// register themselves and keep their registration alive with heartbeats,
// deregister on shutdown, subscribe to the services they call and pick an
// instance per call with any of strata's load-balancing algorithms
// (client-side load balancing: calls go straight to the instance).
//
// Failures reported with Done feed passive ejection, so an instance that
// keeps failing is skipped for a while even before the registry notices.
// Every answer is cached on disk (Config.CacheDir), so a process that
// starts while every registry server is down still finds its services.
//
//	c, _ := client.New(client.Config{Servers: []string{"127.0.0.1:8848"}, CacheDir: "/var/cache/app"})
//	defer c.Close(context.Background())
//	c.Register(ctx, "orders", client.Instance{IP: "127.0.0.7", Port: 8080})
//	ep, err := c.Pick(ctx, "payments", 0)
//	// … call ep.Addr() …
//	c.Done(ep, err)
package client
