package registry

import (
	"encoding/json"
	"net/http"

	"github.com/strata-lb/strata/internal/regapi"
)

// nsWatchLine is one line of a namespace watch: a service's answer (Found
// false once it is deleted), or Synced after the first listing, which
// holds every service of the namespace.
type nsWatchLine struct {
	Key    *regapi.Key    `json:"key,omitempty"`
	Result *regapi.Result `json:"result,omitempty"`
	Synced bool           `json:"synced,omitempty"`
}

// handleWatchNamespace streams every service of a namespace, one JSON line
// each, then a synced line, then a line for each service that changes or
// goes, as long as the client stays: one connection follows a whole
// namespace (the dns role's remote source), where blocking queries take
// one parked request per service. Answers are Resolve's: healthy
// instances, with the protection threshold applied.
func (n *Node) handleWatchNamespace(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("ns")
	ctx, done, ok := n.startStream(w, r, ns)
	if !ok {
		return
	}
	defer done()
	sent := map[Key]uint64{} // the index of what each service's last line said
	synced := false
	var buf []byte
	for {
		// Take the channel before reading, so a change made during the
		// pass is not missed.
		changed := n.store.Changed()
		buf = buf[:0]
		live := map[Key]bool{}
		for _, k := range n.store.Services(ns, "") {
			live[k] = true
			v, found := n.store.Get(k)
			if !found || (sent[k] == v.Index && synced) {
				continue
			}
			q := Query{Key: k, HealthyOnly: true}
			res := Select(v, found, &q)
			buf = appendLine(buf, k, consumerResult(&res))
			sent[k] = v.Index
		}
		for k := range sent {
			if !live[k] {
				buf = appendLine(buf, k, regapi.Result{})
				delete(sent, k)
			}
		}
		if !synced {
			buf = append(buf, "{\"synced\":true}\n"...)
			synced = true
		}
		if len(buf) > 0 && n.writeParked(w, buf) != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func appendLine(buf []byte, k Key, res regapi.Result) []byte {
	key := regapi.Key(k)
	b, _ := json.Marshal(nsWatchLine{Key: &key, Result: &res})
	return append(append(buf, b...), '\n')
}
