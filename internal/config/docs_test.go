package config

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

const docPath = "../../docs/config.md"

// TestDocsCoverSchema keeps docs/config.md in step with types.go: every
// section of the schema has a heading, every field a table row with a type,
// a default and a description, and no row names a field that does not exist.
func TestDocsCoverSchema(t *testing.T) {
	for _, p := range docProblems(string(mustRead(t, docPath))) {
		t.Error(p)
	}
}

// TestDocsProblemsCanFail checks that docProblems notices drift, so that
// TestDocsCoverSchema is not passing vacuously.
func TestDocsProblemsCanFail(t *testing.T) {
	doc := string(mustRead(t, docPath))
	tests := []struct {
		desc, doc, want string
	}{
		{
			desc: "a field without a row",
			doc:  regexp.MustCompile("(?m)^\\| `max_ejection` \\|.*\n").ReplaceAllString(doc, ""),
			want: "pools[].passive: field max_ejection has no row",
		},
		{
			desc: "a row for a field that does not exist",
			doc:  strings.Replace(doc, "| `zone` |", "| `zone` | string | none | A zone. |\n| `region` |", 1),
			want: "pools[].backends[]: row region is not a field",
		},
		{
			desc: "a section without a heading",
			doc:  strings.Replace(doc, "### `pools[].health`", "### Health", 1),
			want: "pools[].health: no heading",
		},
		{
			desc: "a row without a description",
			doc:  strings.Replace(doc, "| `pprof` | bool |", "| `pprof` | bool | `true` | |\n| `x` | bool |", 1),
			want: "admin: row pprof needs a type, a default and a description in full sentences",
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if tc.doc == doc {
				t.Fatal("the mutation did not change the doc; update the test")
			}
			got := docProblems(tc.doc)
			for _, p := range got {
				if p == tc.want {
					return
				}
			}
			t.Errorf("docProblems = %q, want it to include %q", got, tc.want)
		})
	}
}

// TestDocsExampleIsTheFile keeps the example printed in the docs identical
// to examples/strata.yaml, which TestExample validates.
func TestDocsExampleIsTheFile(t *testing.T) {
	doc := string(mustRead(t, docPath))
	example := string(mustRead(t, "../../examples/strata.yaml"))
	_, after, ok := strings.Cut(doc, "## Complete example")
	if !ok {
		t.Fatal("docs/config.md has no Complete example section")
	}
	if !strings.Contains(after, "```yaml\n"+example+"```\n") {
		t.Error("the example in docs/config.md differs from examples/strata.yaml; paste the file in")
	}
}

var (
	docHeading = regexp.MustCompile(`^#+ (.*)$`)
	docRow     = regexp.MustCompile("^\\| `([a-z0-9_]+)` \\|(.*)$")
)

// docProblems lists how doc fails to document the schema.
func docProblems(doc string) []string {
	// Split the doc into sections by heading; a heading names a schema
	// section by its path in backticks, "Top level" for the root.
	rows := map[string]map[string]string{} // section → field → rest of row
	current := "-"                         // not a schema section
	for line := range strings.SplitSeq(doc, "\n") {
		if m := docHeading.FindStringSubmatch(line); m != nil {
			current = "-"
			if m[1] == "Top level" {
				current = ""
			} else if i := strings.Index(m[1], "`"); i >= 0 {
				if j := strings.Index(m[1][i+1:], "`"); j >= 0 {
					current = m[1][i+1 : i+1+j]
				}
			}
			if rows[current] == nil {
				rows[current] = map[string]string{}
			}
			continue
		}
		if m := docRow.FindStringSubmatch(line); m != nil && current != "-" {
			rows[current][m[1]] = m[2]
		}
	}

	var problems []string
	fields := map[string]map[string]bool{}
	for _, f := range schemaFields() {
		if fields[f.section] == nil {
			fields[f.section] = map[string]bool{}
		}
		fields[f.section][f.name] = true
	}
	for _, section := range sections() {
		documented, ok := rows[section]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no heading", section))
			continue
		}
		for _, f := range schemaFields() {
			if f.section != section {
				continue
			}
			rest, ok := documented[f.name]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: field %s has no row", section, f.name))
				continue
			}
			// "type | default | description |": three non-empty cells, the
			// last ending a sentence.
			cells := strings.Split(strings.TrimSuffix(strings.TrimSpace(rest), "|"), "|")
			if len(cells) != 3 || strings.TrimSpace(cells[0]) == "" || strings.TrimSpace(cells[1]) == "" ||
				!strings.HasSuffix(strings.TrimSpace(cells[2]), ".") {
				problems = append(problems, fmt.Sprintf("%s: row %s needs a type, a default and a description in full sentences", section, f.name))
			}
		}
		for name := range documented {
			if !fields[section][name] {
				problems = append(problems, fmt.Sprintf("%s: row %s is not a field", section, name))
			}
		}
	}
	return problems
}
