package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// MaxSize is the largest config file strata reads. Real configs are a few
// kilobytes; the cap keeps a wrong path (a log file, a disk image) from
// eating memory.
const MaxSize = 16 << 20

// maxErrors caps how many problems decode reports: past that point the file
// is probably not a strata config at all and more lines only bury the first.
const maxErrors = 50

// Load reads the config file at path and runs Parse on it.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	// Read one byte past the cap so Parse can tell "exactly MaxSize" from
	// "larger", without reading a huge file whole.
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads a YAML config through all three stages: decode, defaults,
// validate. filename is only used in error messages. The error, when not
// nil, joins one *Error per problem (see errors.Join).
func Parse(filename string, data []byte) (*Config, error) {
	c, err := decode(filename, data)
	if err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode is stage one: YAML text to a Config with no defaults applied.
func decode(filename string, data []byte) (c *Config, err error) {
	c = &Config{pos: &Positions{file: filename, lines: map[string]int{}}}
	if len(data) > MaxSize {
		return nil, &Error{File: filename, Err: fmt.Errorf("file is larger than the %d MiB limit", MaxSize>>20)}
	}
	root, err := parseYAML(filename, data)
	if err != nil {
		return nil, err
	}
	if root == nil || isNull(root) {
		return c, nil // an empty file is an empty config
	}
	d := &decoder{file: filename, lines: c.pos.lines}
	if root.Kind != yaml.MappingNode {
		d.errorf(root.Line, "", "the top level must be a mapping of sections, got %s", describe(root))
	} else {
		d.value(root, "", reflect.ValueOf(c).Elem())
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return c, nil
}

// parseYAML parses exactly one YAML document and returns its root node, or
// nil for an empty stream.
func parseYAML(filename string, data []byte) (root *yaml.Node, err error) {
	// yaml.v3 reports its own errors by panicking and recovering; anything
	// else that escapes it is a bug in the parser, and a config file must
	// not be able to crash the process that reloads it.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, &Error{File: filename, Err: fmt.Errorf("invalid YAML: parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, yamlError(filename, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, yamlError(filename, err)
	default:
		return nil, &Error{File: filename, Line: extra.Line, Err: errors.New("a second YAML document starts here; strata reads one")}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlError turns "yaml: line 3: did not find expected key" into an *Error
// that cites the file like every other config error.
func yamlError(filename string, err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &Error{File: filename, Line: line, Err: errors.New("invalid YAML: " + msg)}
}

// decoder walks a yaml.Node tree into Go values, collecting errors rather
// than stopping at the first so one run shows every typo.
type decoder struct {
	file  string
	lines map[string]int
	errs  []error
	full  bool
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	if d.full {
		return
	}
	if len(d.errs) == maxErrors {
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Err: errors.New("too many errors; stopping")})
		d.full = true
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Err: fmt.Errorf(format, args...)})
}

var durationType = reflect.TypeFor[Duration]()

// value decodes n into v, whose field path is path.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	if d.full {
		return
	}
	if n.Kind == yaml.AliasNode {
		// Aliases are refused outright rather than expanded under a budget:
		// a config is small enough to write out, and refusing makes a
		// billion-laughs document fail at its first alias in constant memory.
		d.errorf(n.Line, path, "YAML aliases (*%s) are not supported; write the value out", n.Value)
		return
	}
	if isNull(n) {
		return // null is the same as leaving the field out
	}
	if v.Type() == durationType {
		s, ok := d.scalar(n, path, "a duration")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(n.Line, path, "%q is not a duration (want Go duration text like \"5s\" or \"1m30s\")", s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.value(n, path, p.Elem())
		v.Set(p)
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n.Line, path, "expected a list, got %s", describe(n))
			return
		}
		if len(n.Content) == 0 {
			return // "[]" is the same as leaving the list out: nil
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			d.value(item, p, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		d.mapping(n, path, v)
	case reflect.String:
		s, ok := d.scalar(n, path, "a string")
		if !ok {
			return
		}
		if n.ShortTag() == "!!binary" {
			// yaml.Marshal writes strings that are not valid UTF-8 as
			// !!binary; read them back the same way.
			b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
			if err != nil {
				d.errorf(n.Line, path, "invalid !!binary value: %v", err)
				return
			}
			s = string(b)
		}
		v.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		var i int64
		if n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.errorf(n.Line, path, "%q is not an integer", s)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		s, ok := d.scalar(n, path, "a boolean")
		if !ok {
			return
		}
		var b bool
		if n.Decode(&b) != nil {
			d.errorf(n.Line, path, "%q is not a boolean (want true or false)", s)
			return
		}
		v.SetBool(b)
	default:
		// Only a new field of an unhandled type in types.go gets here; the
		// golden tests decode every field, so this fails in CI, not in use.
		d.errorf(n.Line, path, "internal error: cannot decode into %s", v.Type())
	}
}

// scalar returns n's text when n is a scalar, and reports an error naming
// want otherwise.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "expected %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

// keys iterates over the key/value pairs of mapping n, reporting keys that
// are not plain scalars, merge keys and duplicates, and calls f for the rest
// with the key's text.
func (d *decoder) keys(n *yaml.Node, path string, f func(key string, k, v *yaml.Node)) {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.AliasNode:
			d.errorf(k.Line, path, "YAML aliases (*%s) are not supported; write the value out", k.Value)
			continue
		case k.Kind != yaml.ScalarNode:
			d.errorf(k.Line, path, "expected a name as key, got %s", describe(k))
			continue
		case k.ShortTag() == "!!merge":
			d.errorf(k.Line, path, "YAML merge keys (<<) are not supported; write the fields out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, path, "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		f(k.Value, k, v)
	}
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	d.keys(n, path, func(key string, k, val *yaml.Node) {
		i, ok := fields[key]
		if !ok {
			d.errorf(k.Line, path, "unknown field %q %s", key, suggest(key, fields))
			return
		}
		p := joinPath(path, key)
		if !isNull(val) {
			d.lines[p] = k.Line
		}
		d.value(val, p, v.Field(i))
	})
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.errorf(n.Line, path, "internal error: cannot decode into %s", v.Type())
		return
	}
	if len(n.Content) == 0 {
		return // "{}" is the same as leaving the map out: nil
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	d.keys(n, path, func(key string, k, val *yaml.Node) {
		p := joinPath(path, key)
		d.lines[p] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(val, p, e)
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
	})
	v.Set(m)
}

// fieldsOf maps the yaml names of t's fields to their indexes.
func fieldsOf(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name, ok := yamlName(t.Field(i)); ok {
			m[name] = i
		}
	}
	return m
}

// yamlName returns the name f has in YAML, following yaml.v3's rules: the
// tag's first part, else the lowercased field name; unexported fields and
// "-" have none.
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return name, true
}

// suggest returns "(did you mean "x"?)" for the field closest to key by
// edit distance, or the list of valid fields when none is close.
func suggest(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	best, bestDist := "", -1
	for _, name := range names {
		if dist := editDistance(strings.ToLower(key), name); bestDist < 0 || dist < bestDist {
			best, bestDist = name, dist
		}
	}
	// A third of the length tolerates one typo in short names and a
	// transposition or two in long ones without suggesting nonsense.
	if bestDist >= 0 && bestDist <= max(1, len(key)/3) {
		return fmt.Sprintf("(did you mean %q?)", best)
	}
	return "(want one of " + strings.Join(names, ", ") + ")"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's shape for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(n.Value)
}
