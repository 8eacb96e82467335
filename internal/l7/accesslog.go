package l7

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Access log buffering: lines gather in memory and a goroutine writes them
// out, so a request never waits for the disk. The buffer is bounded; when
// the writer falls behind, lines are dropped and counted instead.
const (
	accessLogFlushEvery = time.Second
	accessLogMaxBuffer  = 1 << 20
)

// accessLog is one listener's access log destination.
type accessLog struct {
	path string
	json bool
	w    io.Writer
	file *os.File // nil for stderr and stdout

	mu      sync.Mutex
	closed  bool
	buf     []byte // lines not yet written
	spare   []byte // the flusher's buffer, swapped with buf
	dropped atomic.Uint64
	lines   atomic.Uint64

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// openAccessLog opens path (a file, or stderr or stdout) and starts the
// flusher.
func openAccessLog(path, format string) (*accessLog, error) {
	a := &accessLog{
		path:  path,
		json:  format == "json",
		buf:   make([]byte, 0, 64<<10),
		spare: make([]byte, 0, 64<<10),
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	switch path {
	case "", "stderr":
		a.w = os.Stderr
	case "stdout":
		a.w = os.Stdout
	default:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening access log: %w", err)
		}
		a.w, a.file = f, f
	}
	go a.flusher()
	return a, nil
}

// write queues one formatted line. It never blocks on I/O.
func (a *accessLog) write(line []byte) {
	a.mu.Lock()
	if a.closed || len(a.buf)+len(line) > accessLogMaxBuffer {
		a.mu.Unlock()
		a.dropped.Add(1)
		return
	}
	a.buf = append(a.buf, line...)
	full := len(a.buf) >= accessLogMaxBuffer/2
	a.mu.Unlock()
	a.lines.Add(1)
	if full {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

func (a *accessLog) flusher() {
	defer close(a.done)
	t := time.NewTicker(accessLogFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			a.flush()
			return
		case <-t.C:
		case <-a.kick:
		}
		a.flush()
	}
}

// flush writes what has gathered; only the flusher and close call it.
func (a *accessLog) flush() {
	a.mu.Lock()
	a.buf, a.spare = a.spare[:0], a.buf
	a.mu.Unlock()
	if len(a.spare) > 0 {
		a.w.Write(a.spare) // an error cannot be reported anywhere better
	}
	if cap(a.spare) > 4*accessLogMaxBuffer {
		a.spare = nil
	}
}

// close writes what is left and closes the file. Lines written after
// close are dropped.
func (a *accessLog) close() {
	a.once.Do(func() {
		close(a.stop)
		<-a.done
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		a.flush() // lines written between the last flush and closed
		if a.file != nil {
			a.file.Close()
		}
	})
}

// logEntry is what one access log line says about a request.
type logEntry struct {
	start    time.Time
	duration time.Duration
	client   string
	method   string
	uri      string
	proto    string
	host     string
	referer  string
	agent    string
	status   int
	bytes    int64
	listener string
	route    string
	backend  string
}

// appendCombined formats e in the combined log format, as nginx writes it
// by default: client - - [time] "request" status bytes "referer" "agent".
func appendCombined(b []byte, e *logEntry) []byte {
	b = append(b, e.client...)
	b = append(b, " - - ["...)
	b = e.start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = appendEscaped(b, e.method)
	b = append(b, ' ')
	b = appendEscaped(b, e.uri)
	b = append(b, ' ')
	b = appendEscaped(b, e.proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, " \""...)
	if e.referer == "" {
		b = append(b, '-')
	} else {
		b = appendEscaped(b, e.referer)
	}
	b = append(b, "\" \""...)
	if e.agent == "" {
		b = append(b, '-')
	} else {
		b = appendEscaped(b, e.agent)
	}
	return append(b, "\"\n"...)
}

// appendEscaped writes s with quotes, backslashes and bytes outside
// printable ASCII as \xHH, as nginx does, so that a line can be parsed
// whatever a client sends.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendJSON formats e as one JSON object on a line.
func appendJSON(b []byte, e *logEntry) []byte {
	b = append(b, `{"time":"`...)
	b = e.start.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","client":`...)
	b = appendJSONString(b, e.client)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.method)
	b = append(b, `,"uri":`...)
	b = appendJSONString(b, e.uri)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, e.proto)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, e.host)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.duration.Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"referer":`...)
	b = appendJSONString(b, e.referer)
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, e.agent)
	b = append(b, `,"listener":`...)
	b = appendJSONString(b, e.listener)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, e.route)
	b = append(b, `,"backend":`...)
	b = appendJSONString(b, e.backend)
	return append(b, "}\n"...)
}

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
