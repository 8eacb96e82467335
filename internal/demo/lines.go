package demo

import (
	"bytes"
	_ "embed"
	"io"
	"sync"
)

// lineWriter writes whole lines to w, one writer at a time, so that the
// logs of the demo's processes interleave by line and not by byte.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixed returns a writer that puts prefix before every line.
func (l *lineWriter) prefixed(prefix string) io.Writer {
	return &prefixWriter{l: l, prefix: prefix}
}

type prefixWriter struct {
	l       *lineWriter
	prefix  string
	mu      sync.Mutex
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(p.prefix), p.partial[:i+1]...)
		if _, err := p.l.Write(line); err != nil {
			return n, err
		}
		p.partial = p.partial[i+1:]
	}
	// A line without an end is bounded: flush it as it is.
	if len(p.partial) > 64<<10 {
		p.l.Write(append(append([]byte(p.prefix), p.partial...), '\n'))
		p.partial = p.partial[:0]
	}
	return n, nil
}
