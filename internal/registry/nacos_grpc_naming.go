package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// The naming requests of Nacos 2 clients, mapped onto the registry as the
// v1 HTTP API (nacos.go) maps them: namespace "" is public, a service
// name may carry its group as "GROUP@@name", and the same auth checks
// apply.

// nacosNamingHandler answers one request type with a response type and
// body, or an error.
type nacosNamingHandler func(g *nacosGRPC, ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error)

// nacosNamingRoute is a request type's handler and the response type a
// failure of it is answered with.
type nacosNamingRoute struct {
	response string
	handle   nacosNamingHandler
}

var nacosNamingHandlers = map[string]nacosNamingRoute{
	"InstanceRequest":         {"InstanceResponse", (*nacosGRPC).instanceRequest},
	"BatchInstanceRequest":    {"BatchInstanceResponse", (*nacosGRPC).batchInstanceRequest},
	"ServiceQueryRequest":     {"QueryServiceResponse", (*nacosGRPC).serviceQuery},
	"SubscribeServiceRequest": {"SubscribeServiceResponse", (*nacosGRPC).subscribe},
	"ServiceListRequest":      {"ServiceListResponse", (*nacosGRPC).serviceList},
}

// nacosNamingRequest is the part every naming request has.
type nacosNamingRequest struct {
	RequestID   string `json:"requestId"`
	Namespace   string `json:"namespace"`
	ServiceName string `json:"serviceName"`
	GroupName   string `json:"groupName"`
}

// key is the service the request names.
// decodeNaming reads a naming request's body into q, which embeds
// nacosNamingRequest, and returns the service it names.
func decodeNaming(p *nacosPayload, q interface{ key() (Key, error) }) (Key, error) {
	if err := decodeBody(p, q); err != nil {
		return Key{}, err
	}
	return q.key()
}

// serviceInfoResponse answers a query or a subscription with the service.
type serviceInfoResponse struct {
	nacosResponse
	ServiceInfo nacosServiceInfo `json:"serviceInfo"`
}

func (q *nacosNamingRequest) key() (Key, error) {
	return nacosKey(form{"namespaceId": {q.Namespace}, "groupName": {q.GroupName}, "serviceName": {q.ServiceName}})
}

// nacosGRPCInstance is an instance as Nacos 2 clients send it.
type nacosGRPCInstance struct {
	IP          string            `json:"ip"`
	Port        int               `json:"port"`
	Weight      float64           `json:"weight"`
	Healthy     bool              `json:"healthy"`
	Enabled     bool              `json:"enabled"`
	Ephemeral   bool              `json:"ephemeral"`
	ClusterName string            `json:"clusterName"`
	Metadata    map[string]string `json:"metadata"`
}

func (i *nacosGRPCInstance) instance() Instance {
	md := i.Metadata
	if len(md) == 0 {
		md = nil
	}
	return Instance{IP: i.IP, Port: i.Port, Cluster: i.ClusterName, Weight: i.Weight, Healthy: i.Healthy,
		Enabled: i.Enabled, Ephemeral: i.Ephemeral, Metadata: md}
}

func decodeBody(p *nacosPayload, v any) error {
	if err := json.Unmarshal(p.Body, v); err != nil {
		return errf(http.StatusBadRequest, "%s: body is not the expected JSON: %v", p.Type, err)
	}
	return nil
}

// registerOwned registers the instances of items (one service) through
// the leader for connection c, which owns the ephemeral ones. The
// namespace's write rule is checked here first, so that a registration
// refused for want of a leader can still be owned: the connection's beats
// then register it once the cluster has a leader again. That is what a
// client that moved here from a dead node needs, since the SDK redoes its
// registrations once, when it connects, and not again after a failure.
func (g *nacosGRPC) registerOwned(ctx context.Context, c *nacosConn, r *http.Request, k Key, items []grpcItem) error {
	if !g.n.writeOK(r, k.Namespace) {
		return g.n.writeDenied(k.Namespace)
	}
	for i := range items {
		if err := items[i].Instance.normalize(); err != nil {
			return errf(http.StatusBadRequest, "%v", err)
		}
	}
	err := g.apply(ctx, r, &grpcWrite{Op: grpcOpRegister, Items: items}, requestToken(r))
	var he *httpError
	if err != nil && !(errors.As(err, &he) && (he.code == http.StatusServiceUnavailable || he.code == http.StatusBadGateway)) {
		return err
	}
	for _, it := range items {
		if it.Instance.Ephemeral {
			if oerr := c.own(k, it.Instance); oerr != nil {
				return oerr
			}
		}
	}
	return err
}

// deregisterOwned deregisters ids of k through the leader and forgets them.
func (g *nacosGRPC) deregisterOwned(ctx context.Context, c *nacosConn, r *http.Request, k Key, ins []Instance) error {
	items := make([]grpcItem, len(ins))
	for i := range ins {
		items[i] = grpcItem{Conn: c.id, Key: k, Instance: ins[i]}
	}
	if err := g.apply(ctx, r, &grpcWrite{Op: grpcOpDeregister, Items: items}, requestToken(r)); err != nil {
		return err
	}
	for i := range ins {
		c.disown(k, ins[i].ID())
	}
	return nil
}

func (g *nacosGRPC) instanceRequest(ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error) {
	var q struct {
		nacosNamingRequest
		Type     string            `json:"type"`
		Instance nacosGRPCInstance `json:"instance"`
	}
	k, err := decodeNaming(p, &q)
	if err != nil {
		return "", nil, err
	}
	k = k.withDefaults()
	in := q.Instance.instance()
	switch q.Type {
	case "registerInstance":
		if err := g.registerOwned(ctx, c, r, k, []grpcItem{{Conn: c.id, Key: k, Instance: in}}); err != nil {
			return "", nil, err
		}
	case "deregisterInstance":
		if !g.n.writeOK(r, k.Namespace) {
			return "", nil, g.n.writeDenied(k.Namespace)
		}
		if err := in.normalize(); err != nil {
			return "", nil, errf(http.StatusBadRequest, "%v", err)
		}
		if err := g.deregisterOwned(ctx, c, r, k, []Instance{in}); err != nil {
			return "", nil, err
		}
	default:
		return "", nil, errf(http.StatusBadRequest, "InstanceRequest: unknown type %q (registerInstance or deregisterInstance)", q.Type)
	}
	return "InstanceResponse", okResponse(q.RequestID), nil
}

// batchInstanceRequest registers the connection's instances of a service
// all at once; those it registered before and left out are deregistered,
// as Nacos does.
func (g *nacosGRPC) batchInstanceRequest(ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error) {
	var q struct {
		nacosNamingRequest
		Type      string              `json:"type"`
		Instances []nacosGRPCInstance `json:"instances"`
	}
	k, err := decodeNaming(p, &q)
	if err != nil {
		return "", nil, err
	}
	k = k.withDefaults()
	if q.Type != "batchRegisterInstance" {
		return "", nil, errf(http.StatusBadRequest, "BatchInstanceRequest: unknown type %q (batchRegisterInstance)", q.Type)
	}
	items := make([]grpcItem, len(q.Instances))
	for i := range q.Instances {
		items[i] = grpcItem{Conn: c.id, Key: k, Instance: q.Instances[i].instance()}
	}
	if err := g.registerOwned(ctx, c, r, k, items); err != nil {
		return "", nil, err
	}
	keep := map[string]bool{}
	for _, it := range items {
		keep[it.Instance.ID()] = true
	}
	var drop []Instance
	g.mu.Lock()
	for o, oi := range g.owner {
		if oi.c == c && o.k == k && !keep[o.id] {
			drop = append(drop, oi.in)
		}
	}
	g.mu.Unlock()
	if len(drop) > 0 {
		if err := g.deregisterOwned(ctx, c, r, k, drop); err != nil {
			return "", nil, err
		}
	}
	return "BatchInstanceResponse", okResponse(q.RequestID), nil
}

// nacosServiceInfo is a service as Nacos 2 clients read it (their
// model.Service): Name is the bare service name, GroupName its group, and
// Clusters echoes what the client asked for, since the client files the
// answer under name, group and clusters.
type nacosServiceInfo struct {
	Name                     string      `json:"name"`
	GroupName                string      `json:"groupName"`
	Clusters                 string      `json:"clusters"`
	CacheMillis              int         `json:"cacheMillis"`
	Hosts                    []nacosHost `json:"hosts"`
	LastRefTime              int64       `json:"lastRefTime"`
	Checksum                 string      `json:"checksum"`
	AllIPs                   bool        `json:"allIPs"`
	ReachProtectionThreshold bool        `json:"reachProtectionThreshold"`
	Valid                    bool        `json:"valid"`
}

// serviceInfo answers a query of k from the caller at peer.
func (g *nacosGRPC) serviceInfo(k Key, clusters string, healthyOnly bool, peerAddr string) (nacosServiceInfo, uint64) {
	q := Query{Key: k, HealthyOnly: healthyOnly, Caller: peerAddr}
	if host, _, err := net.SplitHostPort(peerAddr); err == nil {
		q.Caller = host
	}
	if clusters != "" {
		q.Clusters = strings.Split(clusters, ",")
	}
	v, found := g.n.store.Get(k)
	return g.serviceInfoOf(k, clusters, v, found, &q), v.Index
}

func (g *nacosGRPC) serviceInfoOf(k Key, clusters string, v View, found bool, q *Query) nacosServiceInfo {
	res := Select(v, found, q)
	hosts := make([]nacosHost, len(res.Instances))
	for i := range res.Instances {
		hosts[i] = toNacosHost(k, &res.Instances[i])
	}
	return nacosServiceInfo{
		Name: k.Service, GroupName: k.Group, Clusters: clusters, CacheMillis: g.n.opts.CacheMillis, Hosts: hosts,
		LastRefTime: g.refTime(), Checksum: strconv.FormatUint(res.Index, 10),
		ReachProtectionThreshold: res.Protected, Valid: true,
	}
}

func (g *nacosGRPC) serviceQuery(ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error) {
	var q struct {
		nacosNamingRequest
		Cluster     string `json:"cluster"`
		HealthyOnly bool   `json:"healthyOnly"`
	}
	k, err := decodeNaming(p, &q)
	if err != nil {
		return "", nil, err
	}
	if err := g.n.nacosAuth(r, k); err != nil {
		return "", nil, err
	}
	info, _ := g.serviceInfo(k, q.Cluster, q.HealthyOnly, c.peer)
	return "QueryServiceResponse", serviceInfoResponse{okResponse(q.RequestID), info}, nil
}

// subscribe starts (or stops) pushing a service's changes to the
// connection, and answers with the service as it is.
func (g *nacosGRPC) subscribe(ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error) {
	var q struct {
		nacosNamingRequest
		Subscribe bool   `json:"subscribe"`
		Clusters  string `json:"clusters"`
	}
	k, err := decodeNaming(p, &q)
	if err != nil {
		return "", nil, err
	}
	if err := g.n.nacosAuth(r, k); err != nil {
		return "", nil, err
	}
	sk := subKey{k, q.Clusters}
	info, index := g.serviceInfo(k, q.Clusters, false, c.peer)
	if q.Subscribe {
		if err := c.subscribe(sk, index); err != nil {
			return "", nil, err
		}
	} else {
		c.unsubscribe(sk)
	}
	return "SubscribeServiceResponse", serviceInfoResponse{okResponse(q.RequestID), info}, nil
}

func (g *nacosGRPC) serviceList(ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error) {
	var q struct {
		nacosNamingRequest
		PageNo   int `json:"pageNo"`
		PageSize int `json:"pageSize"`
	}
	if err := decodeBody(p, &q); err != nil {
		return "", nil, err
	}
	ns := q.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	group := q.GroupName
	if group == "" {
		group = DefaultGroup
	}
	if !g.n.namespaceOK(r, ns) {
		return "", nil, errf(http.StatusForbidden, "namespace %q needs an access token", ns)
	}
	keys := g.n.store.Services(ns, group)
	if q.PageNo < 1 {
		q.PageNo = 1
	}
	if q.PageSize < 1 || q.PageSize > 1000 {
		q.PageSize = 1000
	}
	names := []string{}
	for i := (q.PageNo - 1) * q.PageSize; i < len(keys) && len(names) < q.PageSize; i++ {
		names = append(names, keys[i].Service)
	}
	return "ServiceListResponse", struct {
		nacosResponse
		Count        int      `json:"count"`
		ServiceNames []string `json:"serviceNames"`
	}{okResponse(q.RequestID), len(keys), names}, nil
}

// subscribe starts a watch of sk that pushes every change after index.
func (c *nacosConn) subscribe(sk subKey, index uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errf(http.StatusServiceUnavailable, "connection %s is closed; reconnect", c.id)
	}
	if _, ok := c.subs[sk]; ok {
		return nil
	}
	// Each subscription holds a goroutine; a connection gets as many as
	// one client address may park on the HTTP API.
	if len(c.subs) >= c.g.n.opts.MaxParkedPerClient {
		return errf(http.StatusTooManyRequests, "connection %s holds %d subscriptions, the most registry.max_watchers_per_client allows", c.id, len(c.subs))
	}
	ctx, cancel := context.WithCancel(c.ctx)
	if !c.g.goTracked(func() { c.watch(ctx, sk, index) }) {
		cancel()
		return errf(http.StatusServiceUnavailable, "the registry is stopping")
	}
	c.subs[sk] = cancel
	return nil
}

func (c *nacosConn) unsubscribe(sk subKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel, ok := c.subs[sk]; ok {
		cancel()
		delete(c.subs, sk)
	}
}

// watch pushes the service sk names each time it changes, until ctx ends
// (an unsubscription, or the connection's end). A push the client has not
// answered within NacosGRPCAckTimeout is sent again (nacos_grpc_detect.go);
// a newer change replaces it.
func (c *nacosConn) watch(ctx context.Context, sk subKey, index uint64) {
	g := c.g
	q := Query{Key: sk.k, Caller: c.peer}
	if host, _, err := net.SplitHostPort(c.peer); err == nil {
		q.Caller = host
	}
	if sk.clusters != "" {
		q.Clusters = strings.Split(sk.clusters, ",")
	}
	var pend *pendingPush
	defer func() {
		if pend != nil {
			c.forget(pend)
		}
	}()
	for {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if pend != nil {
			wctx, cancel = context.WithDeadline(ctx, pend.due)
		}
		v, found := g.n.store.Wait(wctx, sk.k, index)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if v.Index == index {
			if pend != nil && !c.resend(pend) {
				pend = nil
			}
			continue
		}
		index = v.Index
		if pend != nil {
			c.forget(pend)
		}
		info := g.serviceInfoOf(sk.k, sk.clusters, v, found, &q)
		id := strconv.FormatUint(g.reqSeq.Add(1), 10)
		req := struct {
			nacosNamingRequest
			Module      string           `json:"module"`
			ServiceInfo nacosServiceInfo `json:"serviceInfo"`
		}{nacosNamingRequest{RequestID: id, Namespace: sk.k.Namespace,
			ServiceName: sk.k.Service, GroupName: sk.k.Group}, "naming", info}
		pend = c.sendTracked("NotifySubscriberRequest", id, req)
	}
}
