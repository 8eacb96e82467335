package registry

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Nacos Open API v1 naming endpoints, as the official Nacos clients
// call them: form or query parameters in, JSON (or "ok") out, HTTP 200 on
// success. Service names may carry their group as "GROUP@@name".

func (n *Node) nacosRoutes(m *http.ServeMux) {
	const p = "/nacos/v1/ns"
	m.HandleFunc("POST "+p+"/instance", n.write(n.nacosRegister))
	m.HandleFunc("DELETE "+p+"/instance", n.write(n.nacosDeregister))
	m.HandleFunc("PUT "+p+"/instance", n.write(n.nacosUpdate))
	m.HandleFunc("PATCH "+p+"/instance", n.write(n.nacosUpdate))
	m.HandleFunc("PUT "+p+"/instance/beat", n.write(n.nacosBeat))
	m.HandleFunc("GET "+p+"/instance/list", n.nacosList)
	m.HandleFunc("GET "+p+"/instance", n.nacosDetail)
	m.HandleFunc("POST "+p+"/service", n.write(n.nacosPutService))
	m.HandleFunc("PUT "+p+"/service", n.write(n.nacosPutService))
	m.HandleFunc("DELETE "+p+"/service", n.write(n.nacosDeleteService))
	m.HandleFunc("GET "+p+"/service", n.nacosGetService)
	m.HandleFunc("GET "+p+"/service/list", n.nacosServiceList)
	m.HandleFunc("GET "+p+"/operator/metrics", func(w http.ResponseWriter, r *http.Request) {
		svcs, insts := n.store.Count()
		writeJSON(w, http.StatusOK, map[string]any{"status": "UP", "serviceCount": svcs, "instanceCount": insts})
	})
	// Login hands back the token given as password, so clients configured
	// with a namespace's token as their password send it on every call.
	login := func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		pw := r.Form.Get("password")
		a := n.auth.Load()
		ok := a.admin != "" && tokenEqual(pw, a.admin)
		for _, t := range a.namespaces {
			ok = ok || (t != "" && tokenEqual(pw, t))
		}
		if !ok {
			writeErr(w, errf(http.StatusForbidden, "unknown user or password"))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"accessToken": pw, "tokenTtl": 18000, "globalAdmin": false})
	}
	m.HandleFunc("POST /nacos/v1/auth/login", login)
	m.HandleFunc("POST /nacos/v1/auth/users/login", login)
}

// nacosForm parses the request's parameters. The Nacos Go client sends PUT
// bodies without escaping them; a body that does not parse cleanly is
// still used for what did parse.
func nacosForm(r *http.Request) map[string][]string {
	r.ParseForm()
	if r.Method == http.MethodDelete && r.Form == nil {
		return r.URL.Query()
	}
	return r.Form
}

type form map[string][]string

func (f form) get(k string) string {
	if v := f[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// nacosKey reads namespaceId, groupName and serviceName ("GROUP@@name").
func nacosKey(f form) (Key, error) {
	k := Key{Namespace: f.get("namespaceId"), Group: f.get("groupName"), Service: f.get("serviceName")}
	if g, s, ok := strings.Cut(k.Service, "@@"); ok {
		if k.Group == "" {
			k.Group = g
		}
		k.Service = s
	}
	k = k.withDefaults()
	if err := k.Validate(); err != nil {
		return k, errf(http.StatusBadRequest, "%v", err)
	}
	return k, nil
}

func parseBool(s string, def bool) bool {
	if b, err := strconv.ParseBool(s); err == nil {
		return b
	}
	return def
}

// nacosInstance reads an instance from parameters.
func nacosInstance(f form) (Instance, error) {
	in := Instance{IP: f.get("ip"), Cluster: f.get("clusterName"), Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}
	if in.Cluster == "" {
		in.Cluster = f.get("cluster")
	}
	port, err := strconv.Atoi(f.get("port"))
	if err != nil {
		return in, errf(http.StatusBadRequest, "port %q is not a number", f.get("port"))
	}
	in.Port = port
	if s := f.get("weight"); s != "" {
		if in.Weight, err = strconv.ParseFloat(s, 64); err != nil {
			return in, errf(http.StatusBadRequest, "weight %q is not a number", s)
		}
	}
	in.Enabled = parseBool(f.get("enabled"), parseBool(f.get("enable"), true))
	in.Healthy = parseBool(f.get("healthy"), true)
	in.Ephemeral = parseBool(f.get("ephemeral"), true)
	if s := f.get("metadata"); s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &in.Metadata); err != nil {
			return in, errf(http.StatusBadRequest, "metadata is not a JSON object: %v", err)
		}
	}
	if err := in.normalize(); err != nil {
		return in, errf(http.StatusBadRequest, "%v", err)
	}
	return in, nil
}

// nacosAuth checks that r may read k's namespace.
func (n *Node) nacosAuth(r *http.Request, k Key) error {
	if !n.namespaceOK(r, k.Namespace) {
		return errf(http.StatusForbidden, "namespace %q needs an access token", k.Namespace)
	}
	return nil
}

// nacosInstanceForm reads the service key and the instance an instance
// request names, checking that r may write in the namespace when write
// says so (an admin write checks the admin token instead).
func (n *Node) nacosInstanceForm(r *http.Request, write bool) (form, Key, Instance, error) {
	f := form(nacosForm(r))
	k, err := nacosKey(f)
	if err != nil {
		return f, k, Instance{}, err
	}
	if write && !n.writeOK(r, k.Namespace) {
		return f, k, Instance{}, n.writeDenied(k.Namespace)
	}
	in, err := nacosInstance(f)
	return f, k, in, err
}

func okText(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("ok"))
}

func (n *Node) nacosRegister(w http.ResponseWriter, r *http.Request) error {
	_, k, in, err := n.nacosInstanceForm(r, true)
	if err != nil {
		return err
	}
	if _, err := n.register(r, k, &in); err != nil {
		return err
	}
	okText(w)
	return nil
}

func (n *Node) nacosDeregister(w http.ResponseWriter, r *http.Request) error {
	_, k, in, err := n.nacosInstanceForm(r, true)
	if err != nil {
		return err
	}
	if _, err := n.deregister(k, []string{in.ID()}); err != nil {
		return err
	}
	okText(w)
	return nil
}

// nacosUpdate changes weight, enabled and metadata: an admin write.
func (n *Node) nacosUpdate(w http.ResponseWriter, r *http.Request) error {
	nacosForm(r) // the accessToken may be in the form body
	if !n.adminOK(r) {
		return errf(http.StatusUnauthorized, "changing an instance needs the admin token")
	}
	f, k, in, err := n.nacosInstanceForm(r, false) // an admin write: the token was checked
	if err != nil {
		return err
	}
	p := &Patch{Enabled: &in.Enabled}
	if f.get("weight") != "" {
		p.Weight = &in.Weight
	}
	if f.get("metadata") != "" {
		p.Metadata = in.Metadata
	}
	if _, err := n.Propose(&Command{Op: OpPatch, Key: k, IDs: []string{in.ID()}, Patch: p}); err != nil {
		return err
	}
	okText(w)
	return nil
}

// nacosBeatInfo is the "beat" parameter of a Nacos heartbeat.
type nacosBeatInfo struct {
	IP          string            `json:"ip"`
	Port        int               `json:"port"`
	Weight      float64           `json:"weight"`
	ServiceName string            `json:"serviceName"`
	Cluster     string            `json:"cluster"`
	Metadata    map[string]string `json:"metadata"`
}

func (n *Node) nacosBeat(w http.ResponseWriter, r *http.Request) error {
	f := form(nacosForm(r))
	var b nacosBeatInfo
	if s := f.get("beat"); s != "" {
		if err := json.Unmarshal([]byte(s), &b); err != nil {
			return errf(http.StatusBadRequest, "beat is not JSON: %v", err)
		}
	} else {
		b.IP, b.Cluster = f.get("ip"), f.get("clusterName")
		b.Port, _ = strconv.Atoi(f.get("port"))
	}
	if f.get("serviceName") == "" {
		f["serviceName"] = []string{b.ServiceName}
	}
	k, err := nacosKey(f)
	if err != nil {
		return err
	}
	if !n.writeOK(r, k.Namespace) {
		return n.writeDenied(k.Namespace)
	}
	if b.Weight == 0 {
		b.Weight = 1
	}
	in := Instance{IP: b.IP, Port: b.Port, Cluster: b.Cluster, Weight: b.Weight, Metadata: b.Metadata, Enabled: true}
	if _, err := n.beat(k, in); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"clientBeatInterval": n.live.opts.Interval.Milliseconds(), "code": 10200, "lightBeatEnabled": false})
	return nil
}

// nacosHost is an instance as Nacos clients read it.
type nacosHost struct {
	Valid       bool              `json:"valid"`
	Marked      bool              `json:"marked"`
	InstanceID  string            `json:"instanceId"`
	Port        int               `json:"port"`
	IP          string            `json:"ip"`
	Weight      float64           `json:"weight"`
	Metadata    map[string]string `json:"metadata"`
	ClusterName string            `json:"clusterName"`
	ServiceName string            `json:"serviceName"`
	Enabled     bool              `json:"enabled"`
	Healthy     bool              `json:"healthy"`
	Ephemeral   bool              `json:"ephemeral"`
}

func toNacosHost(k Key, in *Instance) nacosHost {
	name := k.Group + "@@" + k.Service
	md := in.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return nacosHost{
		Valid: in.Healthy, InstanceID: in.IP + "#" + strconv.Itoa(in.Port) + "#" + in.Cluster + "#" + name,
		Port: in.Port, IP: in.IP, Weight: in.Weight, Metadata: md, ClusterName: in.Cluster, ServiceName: name,
		Enabled: in.Enabled, Healthy: in.Healthy, Ephemeral: in.Ephemeral,
	}
}

func (n *Node) nacosQuery(r *http.Request) (Key, Query, error) {
	f := form(nacosForm(r))
	k, err := nacosKey(f)
	if err != nil {
		return k, Query{}, err
	}
	if err := n.nacosAuth(r, k); err != nil {
		return k, Query{}, err
	}
	q := Query{Key: k, HealthyOnly: parseBool(f.get("healthyOnly"), false), Caller: f.get("clientIP")}
	if q.Caller == "" {
		q.Caller = clientIP(r)
	}
	if c := f.get("clusters"); c != "" {
		q.Clusters = strings.Split(c, ",")
	}
	return k, q, nil
}

func (n *Node) nacosList(w http.ResponseWriter, r *http.Request) {
	k, q, err := n.nacosQuery(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	v, found := n.store.Get(k)
	res := Select(v, found, &q)
	hosts := make([]nacosHost, len(res.Instances))
	for i := range res.Instances {
		hosts[i] = toNacosHost(k, &res.Instances[i])
	}
	name := k.Group + "@@" + k.Service
	writeJSON(w, http.StatusOK, map[string]any{
		"dom": name, "name": name, "cacheMillis": n.opts.CacheMillis, "useSpecifiedURL": false,
		"hosts": hosts, "checksum": strconv.FormatUint(res.Index, 10), "lastRefTime": time.Now().UnixMilli(),
		"env": "", "clusters": strings.Join(q.Clusters, ","), "reachProtectionThreshold": res.Protected,
	})
}

func (n *Node) nacosDetail(w http.ResponseWriter, r *http.Request) {
	f := form(nacosForm(r))
	k, err := nacosKey(f)
	if err == nil {
		err = n.nacosAuth(r, k)
	}
	var in Instance
	if err == nil {
		in, err = nacosInstance(f)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	cur, ok := n.store.Instance(k, in.ID())
	if !ok {
		writeErr(w, errf(http.StatusNotFound, "no instance %s in %s", in.ID(), k))
		return
	}
	h := toNacosHost(k, &cur)
	writeJSON(w, http.StatusOK, map[string]any{
		"service": h.ServiceName, "ip": h.IP, "port": h.Port, "clusterName": h.ClusterName, "weight": h.Weight,
		"healthy": h.Healthy, "instanceId": h.InstanceID, "metadata": h.Metadata, "enabled": h.Enabled, "ephemeral": h.Ephemeral,
	})
}

func (n *Node) nacosPutService(w http.ResponseWriter, r *http.Request) error {
	f := form(nacosForm(r))
	if !n.adminOK(r) {
		return errf(http.StatusUnauthorized, "changing a service needs the admin token")
	}
	k, err := nacosKey(f)
	if err != nil {
		return err
	}
	s := Service{Key: k}
	if cur, ok := n.store.Get(k); ok {
		s = cur.Service
	}
	if t := f.get("protectThreshold"); t != "" {
		if s.ProtectThreshold, err = strconv.ParseFloat(t, 64); err != nil {
			return errf(http.StatusBadRequest, "protectThreshold %q is not a number", t)
		}
	}
	if md := f.get("metadata"); md != "" {
		// Nacos writes service metadata as k=v,k=v or as JSON.
		s.Metadata = map[string]string{}
		if err := json.Unmarshal([]byte(md), &s.Metadata); err != nil {
			m, perr := pairs([]string{md})
			if perr != nil {
				return errf(http.StatusBadRequest, "metadata %q is neither JSON nor k=v pairs", md)
			}
			s.Metadata = m
		}
	}
	if _, err := n.Propose(&Command{Op: OpPutService, Service: &s}); err != nil {
		return err
	}
	okText(w)
	return nil
}

func (n *Node) nacosDeleteService(w http.ResponseWriter, r *http.Request) error {
	f := form(nacosForm(r))
	if !n.adminOK(r) {
		return errf(http.StatusUnauthorized, "deleting a service needs the admin token")
	}
	k, err := nacosKey(f)
	if err != nil {
		return err
	}
	if _, err := n.Propose(&Command{Op: OpDeleteService, Key: k}); err != nil {
		return err
	}
	okText(w)
	return nil
}

func (n *Node) nacosGetService(w http.ResponseWriter, r *http.Request) {
	k, err := nacosKey(form(nacosForm(r)))
	if err == nil {
		err = n.nacosAuth(r, k)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	v, ok := n.store.Get(k)
	if !ok {
		writeErr(w, errf(http.StatusNotFound, "service %s not found", k))
		return
	}
	clusters := map[string]bool{}
	for _, in := range v.Instances {
		clusters[in.Cluster] = true
	}
	var cs []map[string]any
	for c := range clusters {
		cs = append(cs, map[string]any{"name": c, "healthChecker": map[string]string{"type": "NONE"}, "metadata": map[string]string{}})
	}
	md := v.Service.Metadata
	if md == nil {
		md = map[string]string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"namespaceId": k.Namespace, "groupName": k.Group, "name": k.Service,
		"protectThreshold": v.Service.ProtectThreshold, "metadata": md, "selector": map[string]string{"type": "none"}, "clusters": cs,
	})
}

func (n *Node) nacosServiceList(w http.ResponseWriter, r *http.Request) {
	f := form(nacosForm(r))
	ns := f.get("namespaceId")
	if !n.namespaceOK(r, ns) {
		writeErr(w, errf(http.StatusForbidden, "namespace %q needs an access token", ns))
		return
	}
	group := f.get("groupName")
	if group == "" {
		group = DefaultGroup
	}
	ks := n.store.Services(ns, group)
	pageNo, _ := strconv.Atoi(f.get("pageNo"))
	pageSize, _ := strconv.Atoi(f.get("pageSize"))
	if pageNo < 1 {
		pageNo = 1
	}
	if pageSize < 1 || pageSize > 1000 {
		pageSize = 100
	}
	doms := []string{}
	for i := (pageNo - 1) * pageSize; i < len(ks) && i < pageNo*pageSize; i++ {
		doms = append(doms, ks[i].Service)
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(ks), "doms": doms})
}
