// Package registry is strata's service registry: a VIPServer/Nacos-style
// naming service that callers ask for the healthy instances of a service
// so they can connect to them directly (client-side load balancing).
//
// The model is namespace → group → service → cluster → instance. A
// namespace is an environment (dev, test, prod) isolated from the others;
// a cluster is a zone or region.
//
// The package is built in layers, one file per concern:
//
//   - model.go: the replicated data (services, instances, routes);
//   - store.go: the in-memory state machine every node holds, with an index
//     that grows on every change (for blocking queries and watches);
//   - query.go: healthy-instance queries — cluster and metadata filters,
//     zone affinity with failover, gray routes and the protection threshold;
//   - liveness.go: ephemeral heartbeats and expiry. Heartbeats stay on the
//     leader; only the transitions they cause (unhealthy, removed) are
//     replicated, so 100k instances beating every 5 s do not mean 20k Raft
//     entries a second;
//   - fsm.go, node.go: Raft replication (hashicorp/raft, raft-boltdb);
//   - http.go, nacos.go: strata's own HTTP API and the Nacos Open API v1
//     naming endpoints;
//   - resolver.go: the small query interface other roles (dns) call;
//   - config.go, config_store.go, config_watch.go, config_node.go: the
//     config service (Nacos ConfigService, Diamond): namespace → group →
//     dataId → content with md5, beta and tag variants, a bounded history
//     with rollback, replicated by the same Raft log, and change watches
//     that the long-polling listener and gRPC pushes wait on.
package registry
