package l7

import (
	"os"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/config"
)

// TestDocExamples keeps every YAML example in docs/l7.md a whole config
// that validates, so that a user who pastes one gets a config that loads.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/l7.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range strings.Split(string(doc), "```yaml\n")[1:] {
		body, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatal("unterminated yaml block in docs/l7.md")
		}
		n++
		if _, err := config.Parse("docs/l7.md example", []byte(body)); err != nil {
			t.Errorf("example %d does not validate: %v\n%s", n, err, body)
		}
	}
	if n < 10 {
		t.Errorf("found %d yaml examples in docs/l7.md, want at least 10", n)
	}
}
