package registry

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// fsm applies Raft log entries (JSON Commands) to the Store.
type fsm struct{ store *Store }

// applyResult is what Apply returns to the proposer through the future.
type applyResult struct {
	index uint64
	err   error
}

func (f *fsm) Apply(l *raft.Log) any {
	var c Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		// A log entry this node cannot read was written by a newer
		// version; skipping it keeps the node alive and the error is
		// returned to whoever proposed it.
		return applyResult{err: fmt.Errorf("decoding registry command at log index %d: %w", l.Index, err)}
	}
	idx, err := f.store.Apply(&c)
	return applyResult{index: idx, err: err}
}

// Snapshot captures the store (cheap: references to immutable views);
// Persist encodes it on Raft's snapshot goroutine, so applying entries is
// not held up by encoding a large registry.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return snapshot{f.store.capture()}, nil
}

func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	return f.store.Load(r)
}

type snapshot struct{ d *snapshotData }

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 256<<10)
	if err := json.NewEncoder(w).Encode(s.d); err != nil {
		sink.Cancel()
		return fmt.Errorf("writing registry snapshot: %w", err)
	}
	if err := w.Flush(); err != nil {
		sink.Cancel()
		return fmt.Errorf("writing registry snapshot: %w", err)
	}
	return sink.Close()
}

func (s snapshot) Release() {}
