package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden from the current output")

// TestGolden parses each testdata/golden/*.yaml and compares the config
// after defaults, as JSON, with the .golden file beside it. Run
// `go test ./internal/config -run TestGolden -update` after an intended
// change and review the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden inputs found")
	}
	for _, in := range files {
		t.Run(filepath.Base(in), func(t *testing.T) {
			c, err := Load(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (run with -update to accept):\n%s", in, golden, got)
			}
		})
	}
}

// TestFullSetsEveryField keeps testdata/golden/full.yaml complete, so the
// golden tests exercise the decoder on every field of every type.
func TestFullSetsEveryField(t *testing.T) {
	c, err := decode("full.yaml", mustRead(t, "testdata/golden/full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	index := regexp.MustCompile(`\[\d+\]`)
	written := map[string]bool{}
	for path := range c.pos.lines {
		written[index.ReplaceAllString(path, "[]")] = true
	}
	var missing []string
	for _, f := range schemaFields() {
		if !written[f.path] {
			missing = append(missing, f.path)
		}
	}
	if len(missing) > 0 {
		t.Errorf("testdata/golden/full.yaml does not set: %s", strings.Join(missing, ", "))
	}
}

// TestExample checks that the example shipped to users is valid and uses
// what the brief promises: two pools, a health check, an l7 listener.
func TestExample(t *testing.T) {
	c, err := Load("../../examples/strata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) < 2 || c.Pools[0].Health == nil || c.L7 == nil || c.L7.Listeners[0].Listen != "127.0.0.1:8080" {
		t.Errorf("examples/strata.yaml lost part of what it demonstrates: %+v", c)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// schemaField is one field of the schema: its path with list indexes as
// "[]" ("pools[].backends[].address"), the path of the section holding it
// ("pools[].backends[]") and its yaml name.
type schemaField struct {
	path, section, name string
	typ                 reflect.Type
}

// schemaFields walks Config by reflection and lists every field in
// declaration order.
func schemaFields() []schemaField {
	var out []schemaField
	var walk func(t reflect.Type, section string)
	walk = func(t reflect.Type, section string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, ok := yamlName(f)
			if !ok {
				continue
			}
			path := joinPath(section, name)
			out = append(out, schemaField{path: path, section: section, name: name, typ: f.Type})
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Struct:
				walk(ft, path)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem(), path+"[]")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// sections lists the section paths of the schema, "" for the top level.
func sections() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range schemaFields() {
		if !seen[f.section] {
			seen[f.section] = true
			out = append(out, f.section)
		}
	}
	sort.Strings(out)
	return out
}
