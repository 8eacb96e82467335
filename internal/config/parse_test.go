package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseErrors covers every class of stage-one error. Each want is the
// whole error text, so the file, the line and the field path are all
// asserted.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		desc string
		in   string
		want string
	}{
		{
			desc: "unknown field with a suggestion",
			in: `pools:
  - name: web
    backends:
      - address: 127.0.0.1:8001
      - adress: 127.0.0.1:8002
`,
			want: `strata.yaml:5: pools[0].backends[1]: unknown field "adress" (did you mean "address"?)`,
		},
		{
			desc: "unknown top-level field lists the sections when nothing is close",
			in:   "listeners: []\n",
			want: `strata.yaml:1: unknown field "listeners" (want one of admin, dns, l4, l7, log, pools, registry, shutdown_delay, shutdown_timeout)`,
		},
		{
			desc: "transposed letters are still suggested",
			in: `pools:
  - name: web
    backends:
      - address: 127.0.0.1:8001
        wieght: 2
`,
			want: `strata.yaml:5: pools[0].backends[0]: unknown field "wieght" (did you mean "weight"?)`,
		},
		{
			desc: "not a duration",
			in: `pools:
  - name: web
    slow_start: fast
`,
			want: `strata.yaml:3: pools[0].slow_start: "fast" is not a duration (want Go duration text like "5s" or "1m30s")`,
		},
		{
			desc: "a bare number is not a duration",
			in:   "shutdown_timeout: 30\n",
			want: `strata.yaml:1: shutdown_timeout: "30" is not a duration (want Go duration text like "5s" or "1m30s")`,
		},
		{
			desc: "duration inside a pointer",
			in: `pools:
  - name: web
    health:
      type: tcp
      jitter: lots
`,
			want: `strata.yaml:5: pools[0].health.jitter: "lots" is not a duration (want Go duration text like "5s" or "1m30s")`,
		},
		{
			desc: "not an integer",
			in: `pools:
  - name: web
    health:
      type: tcp
      rise: two
`,
			want: `strata.yaml:5: pools[0].health.rise: "two" is not an integer`,
		},
		{
			desc: "a quoted number is a string, not an integer",
			in: `pools:
  - name: web
    backends:
      - address: 127.0.0.1:8001
        weight: "3"
`,
			want: `strata.yaml:5: pools[0].backends[0].weight: "3" is not an integer`,
		},
		{
			desc: "integer overflow",
			in: `pools:
  - name: web
    backends:
      - address: 127.0.0.1:8001
        weight: 99999999999999999999
`,
			want: `strata.yaml:5: pools[0].backends[0].weight: "99999999999999999999" is not an integer`,
		},
		{
			desc: "not a boolean",
			in:   "admin:\n  pprof: maybe\n",
			want: `strata.yaml:2: admin.pprof: "maybe" is not a boolean (want true or false)`,
		},
		{
			desc: "list where a string belongs",
			in:   "log:\n  level: [info]\n",
			want: `strata.yaml:2: log.level: expected a string, got a list`,
		},
		{
			desc: "mapping where a list belongs",
			in:   "pools:\n  name: web\n",
			want: `strata.yaml:2: pools: expected a list, got a mapping`,
		},
		{
			desc: "scalar where a mapping belongs",
			in:   "admin: on\n",
			want: `strata.yaml:1: admin: expected a mapping, got "on"`,
		},
		{
			desc: "list where a string map belongs",
			in: `pools:
  - name: web
    backends:
      - address: 127.0.0.1:8001
        tags: [a, b]
`,
			want: `strata.yaml:5: pools[0].backends[0].tags: expected a mapping, got a list`,
		},
		{
			desc: "mapping as a tag value",
			in: `pools:
  - name: web
    backends:
      - address: 127.0.0.1:8001
        tags:
          env: {a: b}
`,
			want: `strata.yaml:6: pools[0].backends[0].tags.env: expected a string, got a mapping`,
		},
		{
			desc: "top level is not a mapping",
			in:   "- a\n- b\n",
			want: `strata.yaml:1: the top level must be a mapping of sections, got a list`,
		},
		{
			desc: "duplicate field",
			in:   "log:\n  level: info\n  format: json\n  level: debug\n",
			want: `strata.yaml:4: log: duplicate key "level" (first at line 2)`,
		},
		{
			desc: "duplicate tag key",
			in: `pools:
  - name: web
    backends:
      - address: 127.0.0.1:8001
        tags: {env: prod, env: dev}
`,
			want: `strata.yaml:5: pools[0].backends[0].tags: duplicate key "env" (first at line 5)`,
		},
		{
			desc: "aliases are refused",
			in: `pools:
  - name: web
    backends: &b
      - address: 127.0.0.1:8001
  - name: api
    backends: *b
`,
			want: `strata.yaml:6: pools[1].backends: YAML aliases (*b) are not supported; write the value out`,
		},
		{
			desc: "merge keys are refused",
			in: `pools:
  - name: web
    health:
      <<: {type: tcp}
`,
			want: `strata.yaml:4: pools[0].health: YAML merge keys (<<) are not supported; write the fields out`,
		},
		{
			desc: "a mapping as a key",
			in:   "log:\n  ? {a: b}\n  : c\n",
			want: `strata.yaml:2: log: expected a name as key, got a mapping`,
		},
		{
			desc: "YAML syntax error cites the line",
			in:   "log:\n  level: info\n format: text\n",
			// yaml.v3 cites the line where the enclosing mapping starts.
			want: `strata.yaml:2: invalid YAML: did not find expected key`,
		},
		{
			desc: "two documents",
			in:   "log:\n  level: info\n---\nlog:\n  level: debug\n",
			want: `strata.yaml:3: a second YAML document starts here; strata reads one`,
		},
		{
			desc: "every error is reported, in file order",
			in: `admin:
  listn: 127.0.0.1:9901
shutdown_timeout: soon
`,
			want: `strata.yaml:2: admin: unknown field "listn" (did you mean "listen"?)` + "\n" +
				`strata.yaml:3: shutdown_timeout: "soon" is not a duration (want Go duration text like "5s" or "1m30s")`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Parse("strata.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v; want error %q", c, tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("wrong error\n got: %s\nwant: %s", got, tc.want)
			}
			for _, e := range flatten(err) {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Errorf("error %q is %T, want *config.Error", e, e)
				}
			}
		})
	}
}

// TestParseBillionLaughs checks that a document built to expand
// exponentially through aliases fails at once, before any expansion.
func TestParseBillionLaughs(t *testing.T) {
	// Nine aliases per level, thirty levels deep: 9^30 strings if expanded.
	var b strings.Builder
	b.WriteString("pools:\n  - name: web\n    backends:\n      - address: 127.0.0.1:8001\n        tags:\n")
	b.WriteString("          a00: &a00 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 30; i++ {
		b.WriteString("          a" + itoa(i) + ": &a" + itoa(i) + " [")
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + itoa(i-1))
		}
		b.WriteString("]\n")
	}
	b.WriteString("  - name: api\n    health: *a29\n")
	start := time.Now()
	_, err := Parse("laughs.yaml", []byte(b.String()))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v; aliases must be refused without expanding them", d)
	}
	if err == nil {
		t.Fatal("Parse accepted a billion-laughs document")
	}
	if !strings.Contains(err.Error(), "laughs.yaml:37: pools[1].health: YAML aliases (*a29) are not supported") {
		t.Errorf("error does not name the alias: %v", err)
	}
	if n := len(flatten(err)); n > maxErrors+1 {
		t.Errorf("%d errors; want at most %d", n, maxErrors+1)
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func TestParseSizeCap(t *testing.T) {
	big := make([]byte, MaxSize+1)
	for i := range big {
		big[i] = '#'
	}
	_, err := Parse("big.yaml", big)
	if want := "big.yaml: file is larger than the 16 MiB limit"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestParseEmpty checks that an empty file, a comment-only file and an
// explicit null are all the empty config with its defaults.
func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "# nothing yet\n", "~\n", "---\n"} {
		c, err := Parse("empty.yaml", []byte(in))
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if c.Admin.Listen != DefaultAdminListen || len(c.Pools) != 0 || c.L7 != nil {
			t.Errorf("Parse(%q) = %+v, want the empty config with defaults", in, c)
		}
	}
}

// TestParseNullIsAbsent checks that "key:" with no value is the same as
// leaving the key out, down to the defaults it gets.
func TestParseNullIsAbsent(t *testing.T) {
	c, err := Parse("null.yaml", []byte("l7:\nshutdown_timeout:\nadmin:\n  pprof: ~\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.L7 != nil || c.ShutdownTimeout != DefaultShutdownTimeout || !*c.Admin.Pprof {
		t.Errorf("null fields were not treated as absent: %+v", c)
	}
}

// TestPositions checks the position table that later stages cite.
func TestPositions(t *testing.T) {
	in := `admin:
  listen: 127.0.0.1:9901
pools:
  - name: web
    backends:
      - address: 127.0.0.1:8001
      - address: 127.0.0.1:8002
        tags:
          env: prod
  - name: api

    backends:
      - address: 127.0.0.1:9001
`
	c, err := decode("p.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	pos := c.Positions()
	for path, want := range map[string]int{
		"admin":                         1,
		"admin.listen":                  2,
		"pools":                         3,
		"pools[0]":                      4,
		"pools[0].name":                 4,
		"pools[0].backends[1]":          7,
		"pools[0].backends[1].address":  7,
		"pools[0].backends[1].tags.env": 9,
		"pools[1].backends":             12,
		"pools[1].backends[0].address":  13,
		// Absent fields fall back to their nearest written ancestor.
		"pools[1].backends[0].weight": 13,
		"pools[1].health.timeout":     10,
		"log.level":                   0,
	} {
		if got := pos.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
	if !pos.Has("pools[0].backends[1].tags.env") || pos.Has("pools[1].health") {
		t.Error("Has does not tell written fields from absent ones")
	}
	if pos.File() != "p.yaml" {
		t.Errorf("File() = %q", pos.File())
	}
	err = c.Errorf("pools[1].backends[0].address", "cannot reach %s: %w", "it", errors.ErrUnsupported)
	if want := "p.yaml:13: pools[1].backends[0].address: cannot reach it: unsupported operation"; err.Error() != want {
		t.Errorf("Errorf = %q, want %q", err, want)
	}
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Error("Errorf does not wrap %w")
	}
	// A Config built in code has no positions but still formats errors.
	if got := (&Config{}).Errorf("log.level", "bad").Error(); got != "log.level: bad" {
		t.Errorf("Errorf without positions = %q", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "strata.yaml")
	if err := os.WriteFile(path, []byte("log:\n  level: loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + `:2: log.level: unknown level "loud" (want debug, info, warn or error)`; err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %s", err, want)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want an error wrapping os.ErrNotExist", err)
	}
}

// flatten returns the errors inside an errors.Join, or err itself.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
