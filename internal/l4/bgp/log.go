package bgp

import (
	"context"
	"log/slog"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// logAdapter sends GoBGP's log to the role's slog logger. GoBGP logs
// every session change at info; its debug messages stay out unless the
// logger asks for them.
type logAdapter struct {
	l *slog.Logger
	// down, when set, is told the reason of every session that leaves
	// established: GoBGP says why only in its log.
	down func(addr, reason string)
}

func (a logAdapter) log(level slog.Level, msg string, fields gobgplog.Fields) {
	if !a.l.Enabled(context.Background(), level) {
		return
	}
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		args = append(args, k, v)
	}
	a.l.Log(context.Background(), level, msg, args...)
}

func (a logAdapter) Panic(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a logAdapter) Fatal(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a logAdapter) Error(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a logAdapter) Warn(msg string, f gobgplog.Fields)  { a.log(slog.LevelWarn, msg, f) }
func (a logAdapter) Info(msg string, f gobgplog.Fields) {
	if msg == "Peer Down" && a.down != nil {
		addr, _ := f["Key"].(string)
		reason, _ := f["Reason"].(string)
		a.down(addr, reason)
	}
	a.log(slog.LevelInfo, msg, f)
}
func (a logAdapter) Debug(msg string, f gobgplog.Fields) { a.log(slog.LevelDebug, msg, f) }

func (a logAdapter) SetLevel(gobgplog.LogLevel) {}
func (a logAdapter) GetLevel() gobgplog.LogLevel {
	if a.l.Enabled(context.Background(), slog.LevelDebug) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
