package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The config service over HTTP: the Nacos Open API v1 config endpoints
// (/nacos/v1/cs/…) as the official clients call them, and strata's own
// JSON API under /v1/registry/configs, which `strata ctl config` uses and
// which adds rollback. Writes go through n.write (a follower forwards them
// to the leader); the auth model is naming's: reads need the namespace's
// token when it has one, writes the namespace's token or the admin token.

// The separators of the long-polling listener's Listening-Configs
// parameter and answer: fields of a key are joined with ^2, keys end with
// ^1.
const (
	listenFieldSep = "\x02"
	listenLineSep  = "\x01"
)

// listenDelay is taken off a long-poll's Long-Pulling-Timeout so the
// answer reaches the client before it gives up (Nacos takes 500 ms too).
const listenDelay = 500 * time.Millisecond

func (n *Node) configRoutes(m *http.ServeMux) {
	const p = "/nacos/v1/cs"
	m.HandleFunc("GET "+p+"/configs", n.nacosConfigGet)
	m.HandleFunc("POST "+p+"/configs", n.write(n.nacosConfigPublish))
	m.HandleFunc("DELETE "+p+"/configs", n.write(n.nacosConfigRemove))
	m.HandleFunc("POST "+p+"/configs/listener", n.nacosConfigListen)
	m.HandleFunc("GET "+p+"/history", n.nacosConfigHistory)

	const s = "/v1/registry/configs"
	m.HandleFunc("GET "+s, n.handleConfigList)
	m.HandleFunc("GET "+s+"/{ns}/{group}/{dataId}", n.handleConfigGet)
	m.HandleFunc("PUT "+s+"/{ns}/{group}/{dataId}", n.write(n.handleConfigPut))
	m.HandleFunc("DELETE "+s+"/{ns}/{group}/{dataId}", n.write(n.handleConfigDelete))
	m.HandleFunc("GET "+s+"/{ns}/{group}/{dataId}/history", n.handleConfigHistory)
	m.HandleFunc("POST "+s+"/{ns}/{group}/{dataId}/rollback", n.write(n.handleConfigRollback))
}

// nacosConfigKey reads dataId, group and tenant (or namespaceId, as the
// v2 Open API names it).
func nacosConfigKey(f form) (ConfigKey, error) {
	k := ConfigKey{Namespace: f.get("tenant"), Group: f.get("group"), DataID: f.get("dataId")}
	if k.Namespace == "" {
		k.Namespace = f.get("namespaceId")
	}
	k = k.withDefaults()
	if err := k.Validate(); err != nil {
		return k, errf(http.StatusBadRequest, "%v", err)
	}
	return k, nil
}

// configReadOK refuses a read of a namespace that needs a token r lacks.
func (n *Node) configReadOK(r *http.Request, ns string) error {
	if !n.namespaceOK(r, ns) {
		return errf(http.StatusForbidden, "namespace %q needs an access token", ns)
	}
	return nil
}

// configWriteOK refuses a write r may not make in namespace ns.
func (n *Node) configWriteOK(r *http.Request, ns string) error {
	if !n.writeOK(r, ns) {
		return n.writeDenied(ns)
	}
	return nil
}

// checkContent refuses an empty or oversized content as Nacos does (400).
func (n *Node) checkContent(content string) error {
	if content == "" {
		return errf(http.StatusBadRequest, "content is empty")
	}
	if max := n.opts.Config.MaxContentBytes; len(content) > max {
		return errf(http.StatusBadRequest, "content is %d bytes, more than registry.config.max_content_bytes (%d)", len(content), max)
	}
	return nil
}

// splitIPs reads a comma-separated betaIps list.
func splitIPs(s string) []string {
	var ips []string
	for _, ip := range strings.Split(s, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			ips = append(ips, ip)
		}
	}
	return ips
}

func textResponse(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// nacosConfigGet answers a configuration's content (Content-MD5 and
// Config-Type in headers), 404 "config data not exist" when there is
// none; with search=accurate or search=blur it answers a page of
// configurations as JSON, as Nacos's search does.
func (n *Node) nacosConfigGet(w http.ResponseWriter, r *http.Request) {
	f := form(nacosForm(r))
	if s := f.get("search"); s == "accurate" || s == "blur" {
		n.nacosConfigSearch(w, r, f, s == "blur")
		return
	}
	k, err := nacosConfigKey(f)
	if err == nil {
		err = n.configReadOK(r, k.Namespace)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	it, ok := n.ConfigGet(k.Namespace, k.Group, k.DataID, clientIP(r), configTag(r, f))
	if !ok {
		textResponse(w, http.StatusNotFound, "config data not exist")
		return
	}
	h := w.Header()
	h.Set("Content-MD5", it.MD5)
	h.Set("Config-Type", configType(it.Type))
	h.Set("Last-Modified", time.UnixMilli(it.LastModified).UTC().Format(http.TimeFormat))
	h.Set("Pragma", "no-cache")
	h.Set("Cache-Control", "no-cache,no-store")
	if it.Beta {
		h.Set("isBeta", "true")
	}
	if f.get("show") == "all" {
		writeJSON(w, http.StatusOK, nacosConfigInfo(it))
		return
	}
	textResponse(w, http.StatusOK, it.Content)
}

// configTag is the tag a Nacos request asks for: the tag parameter, or
// the Vipserver-Tag header that clients send.
func configTag(r *http.Request, f form) string {
	if t := f.get("tag"); t != "" {
		return t
	}
	return r.Header.Get("Vipserver-Tag")
}

// configType is the type Nacos reports for one never given ("text").
func configType(t string) string {
	if t == "" {
		return "text"
	}
	return t
}

// nacosConfigInfo is a configuration as Nacos's JSON answers have it.
func nacosConfigInfo(it ConfigItem) map[string]any {
	tenant := it.Key.Namespace
	if tenant == DefaultNamespace {
		tenant = ""
	}
	return map[string]any{
		"id": strconv.FormatUint(it.Version, 10), "dataId": it.Key.DataID, "group": it.Key.Group, "tenant": tenant,
		"content": it.Content, "md5": it.MD5, "type": configType(it.Type), "appName": "",
		"lastModified": it.LastModified,
	}
}

// wildcard reports whether s matches pattern, in which '*' matches any
// run of characters (Nacos's blur search); an empty pattern matches all.
func wildcard(pattern, s string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return s == pattern
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// page returns the 1-based page pageNo of pageSize items of total, as
// bounds into the list (pageSize defaults to 100 and is capped at 500).
func page(f form, total int) (pageNo, pageSize, from, to int) {
	pageNo, _ = strconv.Atoi(f.get("pageNo"))
	pageSize, _ = strconv.Atoi(f.get("pageSize"))
	if pageNo < 1 {
		pageNo = 1
	}
	if pageSize < 1 {
		pageSize = 100
	}
	pageSize = min(pageSize, 500)
	from = min((pageNo-1)*pageSize, total)
	to = min(from+pageSize, total)
	return
}

func (n *Node) nacosConfigSearch(w http.ResponseWriter, r *http.Request, f form, blur bool) {
	ns := f.get("tenant")
	if ns == "" {
		ns = f.get("namespaceId")
	}
	if ns == "" {
		ns = DefaultNamespace
	}
	if err := n.configReadOK(r, ns); err != nil {
		writeErr(w, err)
		return
	}
	dataID, group := f.get("dataId"), f.get("group")
	var items []map[string]any
	for _, k := range n.ConfigList(ns, "") {
		match := (dataID == "" || k.DataID == dataID) && (group == "" || k.Group == group)
		if blur {
			match = wildcard(dataID, k.DataID) && wildcard(group, k.Group)
		}
		if !match {
			continue
		}
		if it, ok := n.ConfigGet(k.Namespace, k.Group, k.DataID, "", ""); ok {
			items = append(items, nacosConfigInfo(it))
		}
	}
	pageNo, pageSize, from, to := page(f, len(items))
	pageItems := items[from:to]
	if pageItems == nil {
		pageItems = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"totalCount": len(items), "pageNumber": pageNo, "pagesAvailable": (len(items) + pageSize - 1) / pageSize, "pageItems": pageItems,
	})
}

// nacosConfigPublish stores a configuration and answers "true". betaIps
// and casMd5 are read from the form (the Go SDK) or the headers (the Java
// client and Nacos's own console).
func (n *Node) nacosConfigPublish(w http.ResponseWriter, r *http.Request) error {
	// A body past maxBody leaves the form cut short, content and all:
	// say so rather than answer that the content is empty.
	if err := r.ParseForm(); err != nil {
		if mb := (*http.MaxBytesError)(nil); errors.As(err, &mb) {
			return errf(http.StatusRequestEntityTooLarge, "request body is more than %d bytes", mb.Limit)
		}
	}
	f := form(nacosForm(r))
	k, err := nacosConfigKey(f)
	if err != nil {
		return err
	}
	if err := n.configWriteOK(r, k.Namespace); err != nil {
		return err
	}
	cw := ConfigWrite{Key: k, Content: f.get("content"), Type: f.get("type"), Tag: f.get("tag"), SrcIP: clientIP(r)}
	if err := n.checkContent(cw.Content); err != nil {
		return err
	}
	cw.CasMD5 = f.get("casMd5")
	if cw.CasMD5 == "" {
		cw.CasMD5 = r.Header.Get("casMd5")
	}
	ips := f.get("betaIps")
	if ips == "" {
		ips = r.Header.Get("betaIps")
	}
	cw.BetaIPs = splitIPs(ips)
	if _, err := n.ConfigPublish(cw); err != nil {
		return err
	}
	textResponse(w, http.StatusOK, "true")
	return nil
}

// nacosConfigRemove removes a configuration (with tag, that tag's
// variant; with beta=true, the beta) and answers "true".
func (n *Node) nacosConfigRemove(w http.ResponseWriter, r *http.Request) error {
	f := form(nacosForm(r))
	k, err := nacosConfigKey(f)
	if err != nil {
		return err
	}
	if err := n.configWriteOK(r, k.Namespace); err != nil {
		return err
	}
	if err := n.ConfigRemove(ConfigWrite{Key: k, Tag: f.get("tag"), Beta: parseBool(f.get("beta"), false), SrcIP: clientIP(r)}); err != nil {
		return err
	}
	textResponse(w, http.StatusOK, "true")
	return nil
}

// listenEntry is one key of a long-poll: as the client named it (its
// tenant field kept as sent, for the answer) and the md5 it has.
type listenEntry struct {
	key                   ConfigKey
	dataID, group, tenant string
	hasTenant             bool
	md5                   string
}

// parseListening reads Listening-Configs: keys ended by ^1, each
// dataId^2group^2md5 with an optional ^2tenant.
func parseListening(s string) ([]listenEntry, error) {
	var out []listenEntry
	for _, line := range strings.Split(s, listenLineSep) {
		if line == "" {
			continue
		}
		f := strings.Split(line, listenFieldSep)
		if len(f) != 3 && len(f) != 4 {
			return nil, errf(http.StatusBadRequest, "invalid probeModify: %q is not dataId^2group^2md5[^2tenant]", line)
		}
		e := listenEntry{dataID: f[0], group: f[1], md5: f[2]}
		if len(f) == 4 {
			e.tenant, e.hasTenant = f[3], true
		}
		e.key = ConfigKey{Namespace: e.tenant, Group: e.group, DataID: e.dataID}.withDefaults()
		if err := e.key.Validate(); err != nil {
			return nil, errf(http.StatusBadRequest, "invalid probeModify: %v", err)
		}
		out = append(out, e)
		if len(out) > MaxConfigWatchKeys {
			return nil, errf(http.StatusBadRequest, "invalid probeModify: more than %d keys", MaxConfigWatchKeys)
		}
	}
	if len(out) == 0 {
		return nil, errf(http.StatusBadRequest, "invalid probeModify")
	}
	return out, nil
}

// nacosConfigListen is the long-polling listener: it answers at once the
// keys whose md5 differs from the client's and, when none does, waits up
// to Long-Pulling-Timeout (less 500 ms, at most registry.max_wait) on a
// ConfigWatch for one to change. A request without that header, or with
// Long-Pulling-Timeout-No-Hangup (a client's first poll), never waits.
// The answer is the changed keys, url-encoded; empty when none changed.
func (n *Node) nacosConfigListen(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	f := form(nacosForm(r))
	entries, err := parseListening(f.get("Listening-Configs"))
	if err != nil {
		writeErr(w, err)
		return
	}
	seen := map[string]bool{}
	for i := range entries {
		if ns := entries[i].key.Namespace; !seen[ns] {
			if err := n.configReadOK(r, ns); err != nil {
				writeErr(w, err)
				return
			}
			seen[ns] = true
		}
	}
	ip, tag := clientIP(r), r.Header.Get("Vipserver-Tag")
	stale := func(e *listenEntry, md5 string) bool { return e.md5 != md5 }
	current := func(e *listenEntry) string {
		it, _ := n.ConfigGet(e.key.Namespace, e.key.Group, e.key.DataID, ip, tag)
		return it.MD5
	}
	changed := func() []*listenEntry {
		var c []*listenEntry
		for i := range entries {
			if stale(&entries[i], current(&entries[i])) {
				c = append(c, &entries[i])
			}
		}
		return c
	}
	h := w.Header()
	h.Set("Content-Type", "text/html;charset=UTF-8")
	h.Set("Pragma", "no-cache")
	h.Set("Cache-Control", "no-cache,no-store")

	timeout, err := strconv.ParseInt(r.Header.Get("Long-Pulling-Timeout"), 10, 64)
	c := changed()
	if len(c) > 0 || err != nil || r.Header.Get("Long-Pulling-Timeout-No-Hangup") == "true" {
		io.WriteString(w, listenAnswer(c))
		return
	}
	wait := min(max(time.Duration(timeout)*time.Millisecond-listenDelay, 0), n.opts.MaxWait)
	unpark, ok := n.park(w, r)
	if !ok {
		return
	}
	defer unpark()
	watch := n.ConfigWatch(ip, tag)
	defer watch.Close()
	byKey := make(map[ConfigKey][]*listenEntry, len(entries))
	keys := make([]ConfigKey, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		if byKey[e.key] == nil {
			keys = append(keys, e.key)
		}
		byKey[e.key] = append(byKey[e.key], e)
	}
	if err := watch.Add(keys...); err != nil {
		writeErr(w, err)
		return
	}
	// A change between the first look and Add was not noted: look again.
	c = changed()
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	release := context.AfterFunc(n.ctx, cancel)
	defer release()
	for len(c) == 0 {
		select {
		case <-ctx.Done():
		case <-watch.Changed():
			for _, ch := range watch.Drain() {
				for _, e := range byKey[ch.Key] {
					if stale(e, ch.MD5) {
						c = append(c, e)
					}
				}
			}
			continue
		}
		break
	}
	n.writeParked(w, []byte(listenAnswer(c)))
}

// listenAnswer is the long-poll's answer: dataId^2group[^2tenant]^1 per
// changed key, url-encoded as Nacos's URLEncoder does.
func listenAnswer(c []*listenEntry) string {
	if len(c) == 0 {
		return ""
	}
	var b strings.Builder
	for _, e := range c {
		b.WriteString(e.dataID + listenFieldSep + e.group)
		if e.hasTenant && e.tenant != "" {
			b.WriteString(listenFieldSep + e.tenant)
		}
		b.WriteString(listenLineSep)
	}
	return url.QueryEscape(b.String())
}

// nacosHistoryOp is Nacos's opType of a history entry: D for a removal,
// U for a publish or rollback (I for the oldest publish kept, as Nacos
// marks a creation).
func nacosHistoryOp(op string) string {
	if op == "remove" {
		return "D"
	}
	return "U"
}

// nacosConfigHistory answers a configuration's history as Nacos's
// search=accurate page (newest first), or with nid one version of it.
func (n *Node) nacosConfigHistory(w http.ResponseWriter, r *http.Request) {
	f := form(nacosForm(r))
	k, err := nacosConfigKey(f)
	if err == nil {
		err = n.configReadOK(r, k.Namespace)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	h := n.ConfigHistory(k.Namespace, k.Group, k.DataID)
	tenant := f.get("tenant")
	item := func(i int) map[string]any {
		v := h[i]
		op := nacosHistoryOp(v.Op)
		if i == len(h)-1 && v.Op == "publish" {
			op = "I"
		}
		t := time.UnixMilli(v.LastModified).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		return map[string]any{
			"id": strconv.FormatUint(v.Version, 10), "lastId": -1, "dataId": k.DataID, "group": k.Group, "tenant": tenant,
			"appName": "", "md5": v.MD5, "content": v.Content, "srcIp": v.SrcIP, "srcUser": "", "opType": op,
			"createdTime": t, "lastModifiedTime": t, "type": v.Type,
		}
	}
	if nid := f.get("nid"); nid != "" {
		want, err := strconv.ParseUint(nid, 10, 64)
		if err != nil {
			writeErr(w, errf(http.StatusBadRequest, "nid %q is not a number", nid))
			return
		}
		for i := range h {
			if h[i].Version == want {
				writeJSON(w, http.StatusOK, item(i))
				return
			}
		}
		writeErr(w, errf(http.StatusNotFound, "config %s has no version %d in its history", k, want))
		return
	}
	pageNo, pageSize, from, to := page(f, len(h))
	items := make([]map[string]any, 0, to-from)
	for i := from; i < to; i++ {
		items = append(items, item(i))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"totalCount": len(h), "pageNumber": pageNo, "pagesAvailable": (len(h) + pageSize - 1) / pageSize, "pageItems": items,
	})
}

// strata's own config API.

func configPathKey(r *http.Request) (ConfigKey, error) {
	k := ConfigKey{Namespace: r.PathValue("ns"), Group: r.PathValue("group"), DataID: r.PathValue("dataId")}.withDefaults()
	if err := k.Validate(); err != nil {
		return k, errf(http.StatusBadRequest, "%v", err)
	}
	return k, nil
}

// configJSON is a configuration in strata's API.
type configJSON struct {
	ConfigKey
	Content      string   `json:"content"`
	MD5          string   `json:"md5"`
	Type         string   `json:"type,omitempty"`
	LastModified int64    `json:"last_modified"`
	Version      uint64   `json:"version"`
	Beta         bool     `json:"beta,omitempty"`
	BetaIPs      []string `json:"beta_ips,omitempty"`
	Tag          string   `json:"tag,omitempty"`
}

func toConfigJSON(it ConfigItem) configJSON {
	return configJSON{ConfigKey: it.Key, Content: it.Content, MD5: it.MD5, Type: it.Type, LastModified: it.LastModified,
		Version: it.Version, Beta: it.Beta, BetaIPs: it.BetaIPs, Tag: it.Tag}
}

func (n *Node) handleConfigList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ns := q.Get("namespace")
	if ns == "" {
		ns = DefaultNamespace
	}
	if err := n.configReadOK(r, ns); err != nil {
		writeErr(w, err)
		return
	}
	ks := n.ConfigList(ns, q.Get("group"))
	if ks == nil {
		ks = []ConfigKey{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"configs": ks})
}

// handleConfigGet answers the configuration a client at ?client_ip= (by
// default the caller) with ?tag= is served.
func (n *Node) handleConfigGet(w http.ResponseWriter, r *http.Request) {
	k, err := configPathKey(r)
	if err == nil {
		err = n.configReadOK(r, k.Namespace)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	q := r.URL.Query()
	ip := q.Get("client_ip")
	if ip == "" {
		ip = clientIP(r)
	}
	it, ok := n.ConfigGet(k.Namespace, k.Group, k.DataID, ip, q.Get("tag"))
	if !ok {
		writeErr(w, configErr(http.StatusNotFound, ErrConfigNotFound, "config %s not found", k))
		return
	}
	writeJSON(w, http.StatusOK, toConfigJSON(it))
}

// handleConfigPut publishes the request body as the content; ?type=,
// ?cas_md5=, ?beta_ips= (comma-separated) and ?tag= as in Nacos.
func (n *Node) handleConfigPut(w http.ResponseWriter, r *http.Request) error {
	k, err := configPathKey(r)
	if err != nil {
		return err
	}
	if err := n.configWriteOK(r, k.Namespace); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return errf(http.StatusRequestEntityTooLarge, "content is more than %d bytes", mb.Limit)
		}
		return errf(http.StatusBadRequest, "reading content: %v", err)
	}
	q := r.URL.Query()
	cw := ConfigWrite{Key: k, Content: string(body), Type: q.Get("type"), CasMD5: q.Get("cas_md5"), BetaIPs: splitIPs(q.Get("beta_ips")),
		Tag: q.Get("tag"), SrcIP: clientIP(r)}
	if err := n.checkContent(cw.Content); err != nil {
		return err
	}
	it, err := n.ConfigPublish(cw)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toConfigJSON(it))
	return nil
}

func (n *Node) handleConfigDelete(w http.ResponseWriter, r *http.Request) error {
	k, err := configPathKey(r)
	if err != nil {
		return err
	}
	if err := n.configWriteOK(r, k.Namespace); err != nil {
		return err
	}
	q := r.URL.Query()
	if err := n.ConfigRemove(ConfigWrite{Key: k, Tag: q.Get("tag"), Beta: parseBool(q.Get("beta"), false), SrcIP: clientIP(r)}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": k})
	return nil
}

func (n *Node) handleConfigHistory(w http.ResponseWriter, r *http.Request) {
	k, err := configPathKey(r)
	if err == nil {
		err = n.configReadOK(r, k.Namespace)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	h := n.ConfigHistory(k.Namespace, k.Group, k.DataID)
	if h == nil {
		h = []ConfigVersion{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": k, "versions": h})
}

// handleConfigRollback publishes ?version= of the history again.
func (n *Node) handleConfigRollback(w http.ResponseWriter, r *http.Request) error {
	k, err := configPathKey(r)
	if err != nil {
		return err
	}
	if err := n.configWriteOK(r, k.Namespace); err != nil {
		return err
	}
	v, err := strconv.ParseUint(r.URL.Query().Get("version"), 10, 64)
	if err != nil {
		return errf(http.StatusBadRequest, "version %q is not a number", r.URL.Query().Get("version"))
	}
	it, err := n.ConfigRollback(k, v, clientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toConfigJSON(it))
	return nil
}
