package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A config write that reaches a follower through the Node API (the Nacos
// gRPC front end, whose clients may be connected to any node) is sent on
// to the leader through strata's own config API, so that a client never
// has to know which node leads. With the client's token (ConfigWrite.Token)
// the leader checks the client as if it had called it, as the Nacos gRPC
// naming writes are forwarded; without one, the front end has applied the
// auth model on this node and the follower vouches for the write with the
// admin token or, where there is none (a loopback cluster), the
// namespace's token, which is what the leader's API asks of it.

// leaderCall sends one config write to the leader and decodes its answer
// into out. ok is false when this node leads (the caller proposes
// itself).
func (n *Node) leaderCall(method string, k ConfigKey, suffix string, q url.Values, body []byte, srcIP, token string, out any) (ok bool, err error) {
	if n.IsLeader() {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	leader, err := n.waitLeader(ctx)
	if err != nil {
		return true, err
	}
	if leader == n.id {
		return false, nil
	}
	u := "http://" + leader + "/v1/registry/configs/" + url.PathEscape(k.Namespace) + "/" + url.PathEscape(k.Group) + "/" + url.PathEscape(k.DataID) + suffix
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return true, err
	}
	// The leader must not forward it again should it have lost the lead
	// meanwhile: it answers 503 instead.
	req.Header.Set(forwardedHeader, n.id)
	if srcIP != "" {
		req.Header.Set("X-Forwarded-For", srcIP)
	}
	a := n.auth.Load()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else if t := a.admin; t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	} else if t := a.namespaces[k.Namespace]; t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := n.fwd.Do(req)
	if err != nil {
		return true, errf(http.StatusBadGateway, "registry: forwarding a config write to leader %s: %v", leader, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return true, errf(http.StatusBadGateway, "registry: reading the leader's answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		var sentinel error
		switch resp.StatusCode {
		case http.StatusConflict:
			sentinel = ErrConfigConflict
		case http.StatusNotFound:
			sentinel = ErrConfigNotFound
		}
		return true, configErr(resp.StatusCode, sentinel, "%s", e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return true, fmt.Errorf("registry: decoding the leader's answer: %w", err)
		}
	}
	return true, nil
}

// item is an item of strata's config API as a ConfigItem.
func (c *configJSON) item() ConfigItem {
	return ConfigItem{Key: c.ConfigKey, ConfigVariant: ConfigVariant{Content: c.Content, MD5: c.MD5, Type: c.Type,
		LastModified: c.LastModified, Version: c.Version, BetaIPs: c.BetaIPs}, Beta: c.Beta, Tag: c.Tag}
}

// forwardPublish sends a publish to the leader.
func (n *Node) forwardPublish(w ConfigWrite) (ConfigItem, bool, error) {
	q := url.Values{}
	for k, v := range map[string]string{"type": w.Type, "cas_md5": w.CasMD5, "beta_ips": strings.Join(w.BetaIPs, ","), "tag": w.Tag} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out configJSON
	ok, err := n.leaderCall(http.MethodPut, w.Key.withDefaults(), "", q, []byte(w.Content), w.SrcIP, w.Token, &out)
	return out.item(), ok, err
}

// forwardRemove sends a removal to the leader.
func (n *Node) forwardRemove(w ConfigWrite) (bool, error) {
	q := url.Values{}
	if w.Tag != "" {
		q.Set("tag", w.Tag)
	}
	if w.Beta {
		q.Set("beta", "true")
	}
	return n.leaderCall(http.MethodDelete, w.Key.withDefaults(), "", q, nil, w.SrcIP, w.Token, nil)
}

// forwardRollback sends a rollback to the leader.
func (n *Node) forwardRollback(k ConfigKey, version uint64, srcIP string) (ConfigItem, bool, error) {
	var out configJSON
	ok, err := n.leaderCall(http.MethodPost, k.withDefaults(), "/rollback", url.Values{"version": {strconv.FormatUint(version, 10)}}, nil, srcIP, "", &out)
	return out.item(), ok, err
}
