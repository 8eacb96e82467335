package registry

import (
	"bytes"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// newHCLog routes Raft's hclog output into slog at warn level and above:
// Raft's info lines (every election, every snapshot) are noise to an
// operator of a registry.
func newHCLog(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{l}, DisableTime: true})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(string(bytes.TrimSpace(p)), "component", "raft")
	return len(p), nil
}
