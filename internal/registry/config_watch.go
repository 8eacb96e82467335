package registry

import (
	"fmt"
	"sync"
)

// MaxConfigWatchKeys bounds the keys one ConfigWatch follows (a Nacos
// client listens to its configurations in batches of 3000).
const MaxConfigWatchKeys = 10000

// ConfigChange is a change of a watched key: the md5 the watch's client
// is now served, "" when it is served nothing (the key was removed).
type ConfigChange struct {
	Key ConfigKey
	MD5 string
}

// ConfigWatch follows a set of configurations for one client (its IP and
// tag decide which variant it is served, so which md5 it is told). The
// store notes each change of a watched key and signals Changed; Drain
// hands over the changes noted since the last Drain, the latest md5 of
// each key. Nothing polls, and a slow reader never holds up the store:
// changes of a key coalesce while they wait.
//
// The HTTP long-poll listener and the Nacos gRPC config push both use it:
// Add the keys, compare the md5 the client has with ConfigGet's (changes
// before Add are not noted), then wait on Changed.
type ConfigWatch struct {
	set      *configWatchers
	clientIP string
	tag      string
	ch       chan struct{}

	mu      sync.Mutex
	pending map[ConfigKey]string
	keys    map[ConfigKey]struct{} // guarded by set.mu
	closed  bool                   // guarded by set.mu
}

// configWatchers indexes the watches by key. Lock order: configState.mu,
// then configWatchers.mu, then ConfigWatch.mu.
type configWatchers struct {
	mu    sync.Mutex
	byKey map[ConfigKey]map[*ConfigWatch]struct{}
}

// newWatch makes a watch of no keys.
func (ws *configWatchers) newWatch(clientIP, tag string) *ConfigWatch {
	return &ConfigWatch{set: ws, clientIP: clientIP, tag: tag, ch: make(chan struct{}, 1),
		pending: map[ConfigKey]string{}, keys: map[ConfigKey]struct{}{}}
}

// Add follows more keys. It fails when the watch would follow more than
// MaxConfigWatchKeys or is closed.
func (w *ConfigWatch) Add(keys ...ConfigKey) error {
	ws := w.set
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w.closed {
		return fmt.Errorf("config watch is closed")
	}
	n := len(w.keys)
	for _, k := range keys {
		if _, ok := w.keys[k.withDefaults()]; !ok {
			n++
		}
	}
	if n > MaxConfigWatchKeys {
		return limitErr("a config watch follows at most %d keys", MaxConfigWatchKeys)
	}
	for _, k := range keys {
		k = k.withDefaults()
		w.keys[k] = struct{}{}
		m := ws.byKey[k]
		if m == nil {
			m = map[*ConfigWatch]struct{}{}
			ws.byKey[k] = m
		}
		m[w] = struct{}{}
	}
	return nil
}

// Remove stops following keys.
func (w *ConfigWatch) Remove(keys ...ConfigKey) {
	ws := w.set
	ws.mu.Lock()
	for _, k := range keys {
		k = k.withDefaults()
		ws.drop(k, w)
		delete(w.keys, k)
	}
	ws.mu.Unlock()
	w.mu.Lock()
	for _, k := range keys {
		delete(w.pending, k.withDefaults())
	}
	w.mu.Unlock()
}

// Len is the number of keys followed.
func (w *ConfigWatch) Len() int {
	w.set.mu.Lock()
	defer w.set.mu.Unlock()
	return len(w.keys)
}

// Changed has a value when changes are waiting for Drain.
func (w *ConfigWatch) Changed() <-chan struct{} { return w.ch }

// Drain returns the changes noted since the last Drain, in no order.
func (w *ConfigWatch) Drain() []ConfigChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	out := make([]ConfigChange, 0, len(w.pending))
	for k, m := range w.pending {
		out = append(out, ConfigChange{Key: k, MD5: m})
	}
	clear(w.pending)
	return out
}

// Close stops following every key; the watch cannot be used again.
func (w *ConfigWatch) Close() {
	ws := w.set
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for k := range w.keys {
		ws.drop(k, w)
	}
	w.keys, w.closed = nil, true
}

// drop removes w from k's watchers; ws.mu is held.
func (ws *configWatchers) drop(k ConfigKey, w *ConfigWatch) {
	if m := ws.byKey[k]; m != nil {
		delete(m, w)
		if len(m) == 0 {
			delete(ws.byKey, k)
		}
	}
}

// notify tells k's watchers the md5 each is now served from e (nil: the
// key is gone). The caller holds configState.mu.
func (ws *configWatchers) notify(k ConfigKey, e *configEntry) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.byKey[k] {
		w.note(k, e)
	}
}

// notifyAll tells every watcher of every key its md5 now, after a
// snapshot replaced the state. The caller holds configState.mu.
func (ws *configWatchers) notifyAll(entry func(ConfigKey) *configEntry) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for k, m := range ws.byKey {
		e := entry(k)
		for w := range m {
			w.note(k, e)
		}
	}
}

// note records k's md5 for w and signals it.
func (w *ConfigWatch) note(k ConfigKey, e *configEntry) {
	md5 := ""
	if v, _ := e.served(w.clientIP, w.tag); v != nil {
		md5 = v.MD5
	}
	w.mu.Lock()
	w.pending[k] = md5
	w.mu.Unlock()
	select {
	case w.ch <- struct{}{}:
	default:
	}
}
