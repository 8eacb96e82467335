package registry

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The config requests of Nacos 2 clients, served from the config service
// (config_node.go) with the HTTP API's auth: reads need the namespace's
// token when it has one, writes the namespace's token or the admin token.
// A follower sends writes to the leader through the HTTP API
// (/nacos/v1/cs/configs, with the client's token). A connection that
// listens (ConfigBatchListenRequest) gets one ConfigWatch; each change of
// a key it follows is pushed as a ConfigChangeNotifyRequest, which the
// client answers by request ID and which is resent, at most
// maxPushRetries times, until it does.

var nacosConfigHandlers = map[string]nacosNamingRoute{
	"ConfigQueryRequest":       {"ConfigQueryResponse", (*nacosGRPC).configQuery},
	"ConfigPublishRequest":     {"ConfigPublishResponse", (*nacosGRPC).configPublish},
	"ConfigRemoveRequest":      {"ConfigRemoveResponse", (*nacosGRPC).configRemove},
	"ConfigBatchListenRequest": {"ConfigChangeBatchListenResponse", (*nacosGRPC).configBatchListen},
}

// nacosConfigRequest is the part every config request has.
type nacosConfigRequest struct {
	RequestID string `json:"requestId"`
	DataID    string `json:"dataId"`
	Group     string `json:"group"`
	Tenant    string `json:"tenant"`
}

func (q *nacosConfigRequest) key() (ConfigKey, error) {
	k := ConfigKey{Namespace: q.Tenant, Group: q.Group, DataID: q.DataID}.withDefaults()
	if err := k.Validate(); err != nil {
		return k, errf(http.StatusBadRequest, "%v", err)
	}
	return k, nil
}

// peerHost is the host of the connection's peer: the address beta
// contents are served by.
func (c *nacosConn) peerHost() string {
	if host, _, err := net.SplitHostPort(c.peer); err == nil {
		return host
	}
	return c.peer
}

// configNotFound is Nacos's code for a query of a configuration that does
// not exist, which the SDK takes as "empty" rather than as a failure.
const configNotFound = 300

func (g *nacosGRPC) configQuery(ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error) {
	var q struct {
		nacosConfigRequest
		Tag string `json:"tag"`
	}
	if err := decodeBody(p, &q); err != nil {
		return "", nil, err
	}
	k, err := q.key()
	if err != nil {
		return "", nil, err
	}
	if err := g.n.configReadOK(r, k.Namespace); err != nil {
		return "", nil, err
	}
	it, ok := g.n.ConfigGet(k.Namespace, k.Group, k.DataID, c.peerHost(), q.Tag)
	if !ok {
		return "ConfigQueryResponse", nacosResponse{ResultCode: 500, ErrorCode: configNotFound, Message: "config data not exist", RequestID: q.RequestID}, nil
	}
	return "ConfigQueryResponse", struct {
		nacosResponse
		Content      string `json:"content"`
		ContentType  string `json:"contentType"`
		MD5          string `json:"md5"`
		LastModified int64  `json:"lastModified"`
		IsBeta       bool   `json:"isBeta"`
		Tag          bool   `json:"tag"`
	}{okResponse(q.RequestID), it.Content, configType(it.Type), it.MD5, it.LastModified, it.Beta, it.Tag != ""}, nil
}

func (g *nacosGRPC) configPublish(ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error) {
	var q struct {
		nacosConfigRequest
		Content     string            `json:"content"`
		CasMD5      string            `json:"casMd5"`
		AdditionMap map[string]string `json:"additionMap"`
	}
	if err := decodeBody(p, &q); err != nil {
		return "", nil, err
	}
	k, err := q.key()
	if err != nil {
		return "", nil, err
	}
	if err := g.n.configWriteOK(r, k.Namespace); err != nil {
		return "", nil, err
	}
	if err := g.n.checkContent(q.Content); err != nil {
		return "", nil, err
	}
	w := ConfigWrite{Key: k, Content: q.Content, Type: q.AdditionMap["type"], Tag: q.AdditionMap["tag"],
		BetaIPs: splitIPs(q.AdditionMap["betaIps"]), CasMD5: q.CasMD5, SrcIP: c.peerHost()}
	form := url.Values{"dataId": {k.DataID}, "group": {k.Group}, "tenant": {k.Namespace}, "content": {w.Content}}
	for name, v := range map[string]string{"type": w.Type, "tag": w.Tag, "casMd5": w.CasMD5, "betaIps": q.AdditionMap["betaIps"]} {
		if v != "" {
			form.Set(name, v)
		}
	}
	err = g.viaLeader(ctx, func() error {
		_, err := g.n.ConfigPublish(w)
		return err
	}, func(ctx context.Context, leader string) error {
		return g.forwardHTTP(ctx, leader, http.MethodPost, "/nacos/v1/cs/configs", form, requestToken(r))
	})
	if err != nil {
		return "", nil, err
	}
	return "ConfigPublishResponse", okResponse(q.RequestID), nil
}

func (g *nacosGRPC) configRemove(ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error) {
	var q struct {
		nacosConfigRequest
		Tag string `json:"tag"`
	}
	if err := decodeBody(p, &q); err != nil {
		return "", nil, err
	}
	k, err := q.key()
	if err != nil {
		return "", nil, err
	}
	if err := g.n.configWriteOK(r, k.Namespace); err != nil {
		return "", nil, err
	}
	form := url.Values{"dataId": {k.DataID}, "group": {k.Group}, "tenant": {k.Namespace}}
	if q.Tag != "" {
		form.Set("tag", q.Tag)
	}
	err = g.viaLeader(ctx, func() error {
		return g.n.ConfigRemove(ConfigWrite{Key: k, Tag: q.Tag, SrcIP: c.peerHost()})
	}, func(ctx context.Context, leader string) error {
		return g.forwardHTTP(ctx, leader, http.MethodDelete, "/nacos/v1/cs/configs?"+form.Encode(), nil, requestToken(r))
	})
	if err != nil {
		return "", nil, err
	}
	return "ConfigRemoveResponse", okResponse(q.RequestID), nil
}

// nacosConfigContext is a key of a listen request or answer, as the
// client names it (its tenant kept as sent: the client files pushes and
// answers under it).
type nacosConfigContext struct {
	Group  string `json:"group"`
	MD5    string `json:"md5,omitempty"`
	DataID string `json:"dataId"`
	Tenant string `json:"tenant"`
}

// configListen is a connection's config watch and the keys it follows.
type configListen struct {
	watch *ConfigWatch
	mu    sync.Mutex
	names map[ConfigKey]nacosConfigContext // as the client named each key
}

// configBatchListen starts (or stops) following keys: it answers with the
// keys whose md5 differs from what the client has, and pushes every later
// change of them.
func (g *nacosGRPC) configBatchListen(ctx context.Context, c *nacosConn, p *nacosPayload, r *http.Request) (string, any, error) {
	var q struct {
		RequestID string               `json:"requestId"`
		Listen    bool                 `json:"listen"`
		Contexts  []nacosConfigContext `json:"configListenContexts"`
	}
	if err := decodeBody(p, &q); err != nil {
		return "", nil, err
	}
	keys := make([]ConfigKey, len(q.Contexts))
	for i, cc := range q.Contexts {
		k := ConfigKey{Namespace: cc.Tenant, Group: cc.Group, DataID: cc.DataID}.withDefaults()
		if err := k.Validate(); err != nil {
			return "", nil, errf(http.StatusBadRequest, "%v", err)
		}
		if err := g.n.configReadOK(r, k.Namespace); err != nil {
			return "", nil, err
		}
		keys[i] = k
	}
	changed := []nacosConfigContext{}
	if !q.Listen {
		if l := c.configListen(); l != nil {
			l.watch.Remove(keys...)
			l.mu.Lock()
			for _, k := range keys {
				delete(l.names, k)
			}
			l.mu.Unlock()
		}
		return "ConfigChangeBatchListenResponse", struct {
			nacosResponse
			ChangedConfigs []nacosConfigContext `json:"changedConfigs"`
		}{okResponse(q.RequestID), changed}, nil
	}
	l, err := c.startConfigListen()
	if err != nil {
		return "", nil, err
	}
	l.mu.Lock()
	for i, k := range keys {
		l.names[k] = nacosConfigContext{Group: q.Contexts[i].Group, DataID: q.Contexts[i].DataID, Tenant: q.Contexts[i].Tenant}
	}
	l.mu.Unlock()
	if err := l.watch.Add(keys...); err != nil {
		return "", nil, err
	}
	// Compared after Add, so that a change in between is either seen here
	// or pushed.
	for i, k := range keys {
		it, _ := g.n.ConfigGet(k.Namespace, k.Group, k.DataID, c.peerHost(), "")
		if it.MD5 != q.Contexts[i].MD5 {
			changed = append(changed, nacosConfigContext{Group: q.Contexts[i].Group, DataID: q.Contexts[i].DataID, Tenant: q.Contexts[i].Tenant})
		}
	}
	return "ConfigChangeBatchListenResponse", struct {
		nacosResponse
		ChangedConfigs []nacosConfigContext `json:"changedConfigs"`
	}{okResponse(q.RequestID), changed}, nil
}

// configListen returns the connection's config watch, or nil.
func (c *nacosConn) configListen() *configListen {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// startConfigListen returns the connection's config watch, making it (and
// the goroutine that pushes its changes) at the first listen.
func (c *nacosConn) startConfigListen() (*configListen, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errf(http.StatusServiceUnavailable, "connection %s is closed; reconnect", c.id)
	}
	if c.cfg != nil {
		return c.cfg, nil
	}
	l := &configListen{watch: c.g.n.ConfigWatch(c.peerHost(), ""), names: map[ConfigKey]nacosConfigContext{}}
	if !c.g.goTracked(func() { c.pushConfigChanges(l) }) {
		l.watch.Close()
		return nil, errf(http.StatusServiceUnavailable, "the registry is stopping")
	}
	c.cfg = l
	return l, nil
}

// pushConfigChanges pushes a ConfigChangeNotifyRequest for each change
// the watch notes, and resends those not answered, until the connection
// ends.
func (c *nacosConn) pushConfigChanges(l *configListen) {
	defer l.watch.Close()
	ack := c.g.n.opts.NacosGRPCAckTimeout
	tick := time.NewTicker(max(ack/2, 10*time.Millisecond))
	defer tick.Stop()
	pend := map[ConfigKey]*pendingPush{}
	defer func() {
		for _, p := range pend {
			c.forget(p)
		}
	}()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
			now := time.Now()
			for k, p := range pend {
				if now.After(p.due) && !c.resend(p) {
					delete(pend, k)
				}
			}
		case <-l.watch.Changed():
			for _, ch := range l.watch.Drain() {
				l.mu.Lock()
				name, ok := l.names[ch.Key]
				l.mu.Unlock()
				if !ok {
					continue
				}
				if p := pend[ch.Key]; p != nil {
					c.forget(p)
				}
				id := strconv.FormatUint(c.g.reqSeq.Add(1), 10)
				req := struct {
					RequestID string            `json:"requestId"`
					Headers   map[string]string `json:"headers"`
					Module    string            `json:"module"`
					nacosConfigContext
				}{id, map[string]string{}, "config", name}
				pend[ch.Key] = c.sendTracked("ConfigChangeNotifyRequest", id, req)
			}
		}
	}
}

// viaLeader runs local when this node leads, and otherwise remote with
// the leader's address, waiting (within ctx, at most 5s) for a leader it
// can reach, as apply does.
func (g *nacosGRPC) viaLeader(ctx context.Context, local func() error, remote func(ctx context.Context, leader string) error) error {
	n := g.n
	if n.IsLeader() {
		return local()
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		leader, err := n.waitLeader(wctx)
		if err != nil {
			return errf(http.StatusServiceUnavailable, "no registry leader to take the write: %v", err)
		}
		if leader == n.id {
			return local()
		}
		err = remote(wctx, leader)
		if err == nil || isHTTPError(err) {
			return err
		}
		select {
		case <-wctx.Done():
			return errf(http.StatusServiceUnavailable, "forwarding to the registry leader %s: %v", leader, err)
		case <-retry.C:
		}
	}
}

// forwardHTTP sends a form to the leader's HTTP API.
func (g *nacosGRPC) forwardHTTP(ctx context.Context, leader, method, path string, form url.Values, token string) error {
	var body string
	if form != nil {
		body = form.Encode()
	}
	return g.send(ctx, leader, method, path, "application/x-www-form-urlencoded", strings.NewReader(body), token)
}
