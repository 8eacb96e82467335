package config

import (
	"fmt"
	"strings"
)

// Positions records where each field of a parsed file was written, keyed by
// field path: "admin.listen", "pools[1].backends[0].address",
// "pools[0].backends[0].tags.env". Later stages and other packages use it to
// cite file:line in their errors. The zero value and nil are empty tables.
type Positions struct {
	file  string
	lines map[string]int
}

// File returns the name the config was parsed under.
func (p *Positions) File() string {
	if p == nil {
		return ""
	}
	return p.file
}

// Has reports whether path was written in the file (with a non-null value).
func (p *Positions) Has(path string) bool {
	if p == nil {
		return false
	}
	_, ok := p.lines[path]
	return ok
}

// Line returns the line where path was written. A field the file left out
// (one filled in by defaults, say) has no line of its own, so Line falls back
// to its nearest written ancestor: the error then points at the section that
// lacks the field. It returns 0 when nothing on the way up was written.
func (p *Positions) Line(path string) int {
	if p == nil {
		return 0
	}
	for path != "" {
		if l, ok := p.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// parentPath strips the last element of a field path: "a.b[2]" → "a.b",
// "a.b" → "a", "a" → "".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// Error is one configuration problem. Its text is "file:line: path: msg";
// parts that are unknown are left out.
type Error struct {
	// File is the name the config was parsed under.
	File string
	// Line is 1-based; 0 when unknown.
	Line int
	// Path is the field path, e.g. "pools[0].backends[1].address"; empty
	// when the problem concerns the file as a whole.
	Path string
	// Err says what is wrong.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Positions returns the position table of the file c was parsed from; it is
// empty (but usable) for a Config built in code.
func (c *Config) Positions() *Positions { return c.pos }

// Errorf returns an *Error about the field at path, citing the file and the
// line where that field, or its nearest written ancestor, appears. The
// format takes %w like fmt.Errorf.
func (c *Config) Errorf(path string, format string, args ...any) error {
	return &Error{
		File: c.pos.File(),
		Line: c.pos.Line(path),
		Path: path,
		Err:  fmt.Errorf(format, args...),
	}
}
