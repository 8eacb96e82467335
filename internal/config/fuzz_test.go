package config

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic; every
// error it returns must be an *Error naming the file; and a config it
// accepts must survive a round trip through yaml.Marshal unchanged, which
// checks that defaults are stable and the decoder reads what the encoder
// writes.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/golden/*.yaml")
	seeds = append(seeds, "../../examples/strata.yaml")
	for _, s := range seeds {
		f.Add(mustRead(f, s))
	}
	for _, s := range []string{
		pool + "      - adress: x\n",
		"a: &a [1]\nb: *a\n",
		"log: {level: info, level: debug}\n",
		"pools:\n  - name: web\n    health: {type: dns, query_type: TXT, interval: 1h}\n",
		"--- \n...\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			for _, e := range flatten(err) {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "fuzz.yaml" || !strings.HasPrefix(e.Error(), "fuzz.yaml") {
					t.Fatalf("error %q (%T) does not cite the file", e, e)
				}
			}
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshaling an accepted config: %v", err)
		}
		c2, err := Parse("roundtrip.yaml", out)
		if err != nil {
			t.Fatalf("re-parsing an accepted config: %v\n%s", err, out)
		}
		j1, _ := json.Marshal(c)
		j2, _ := json.Marshal(c2)
		if string(j1) != string(j2) {
			t.Fatalf("round trip changed the config:\n%s\n%s", j1, j2)
		}
	})
}
