package archtest

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/strata-lb/strata"

// graph maps each package of the module (by path relative to the module
// root, "internal/dnslb") to its imports (full paths), for the files that
// build on this platform, tests left out: what the binary links.
func graph(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	g := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.Default.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here, or none for this platform
		}
		rel, _ := filepath.Rel(root, path)
		g[filepath.ToSlash(rel)] = pkg.Imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"internal/config", "internal/dnslb", "cmd/strata"} {
		if _, ok := g[p]; !ok {
			t.Fatalf("package %s not found: the walk is broken, and every rule would pass", p)
		}
	}
	return g
}

// deps returns every import reachable from pkg: the module's packages by
// relative path, others by their full path (their own imports are not
// followed).
func deps(g map[string][]string, pkg string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, imp := range g[p] {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				if !seen[rel] {
					seen[rel] = true
					walk(rel)
				}
				continue
			}
			seen[imp] = true
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// roles are the data planes and what sits above them: the shared core
// (config, upstream, balance, health, …) must not import any of them.
var roles = []string{"internal/l7", "internal/l4", "internal/dnslb", "internal/registry", "internal/discovery",
	"internal/supervisor", "internal/admin", "internal/demo", "cmd/strata"}

// TestImports checks the rules of docs/architecture.md.
func TestImports(t *testing.T) {
	g := graph(t)
	isRole := func(p string) bool { return slices.Contains(roles, p) || strings.HasPrefix(p, "internal/l4/") }
	tests := []struct {
		desc string
		pkg  string
		// bad says why an import reachable from pkg breaks the rule, or "".
		bad func(dep string) string
	}{
		{"the schema imports no other strata package and no DNS library", "internal/config", func(d string) string {
			switch {
			case d == "internal/config/known":
				return ""
			case strings.HasPrefix(d, "internal/") || strings.HasPrefix(d, "pkg/"):
				return "a strata package; register a check in internal/config/known instead"
			case strings.HasPrefix(d, "github.com/miekg/dns"):
				return "a DNS library; internal/dnssyntax registers the DNS checks"
			}
			return ""
		}},
		{"config's registry of checks imports nothing", "internal/config/known", func(d string) string {
			if strings.Contains(d, ".") {
				return "an import from outside the standard library"
			}
			return "" // the standard library
		}},
		{"the registry's consumer types import nothing", "internal/regapi", func(d string) string {
			if strings.Contains(d, ".") || strings.HasPrefix(d, "internal/") || strings.HasPrefix(d, "pkg/") {
				return "regapi is a leaf"
			}
			return ""
		}},
		{"the dns role links neither the registry nor Raft nor bolt", "internal/dnslb", func(d string) string {
			switch {
			case d == "internal/registry":
				return "the registry's node; read it through internal/regapi"
			case strings.HasPrefix(d, "github.com/hashicorp/raft"), strings.Contains(d, "bbolt"), strings.Contains(d, "boltdb"):
				return "Raft or its store"
			}
			return ""
		}},
	}
	for _, core := range []string{"internal/upstream", "internal/balance", "internal/health", "internal/sockopt", "internal/netpark", "internal/graceful", "internal/dnssyntax", "internal/configsource", "pkg/client"} {
		tests = append(tests, struct {
			desc string
			pkg  string
			bad  func(string) string
		}{"the core imports no role: " + core, core, func(d string) string {
			if isRole(d) {
				return "a role; roles use the core, not the other way round"
			}
			return ""
		}})
	}
	for _, role := range []string{"internal/l7", "internal/l4", "internal/dnslb", "internal/registry"} {
		tests = append(tests, struct {
			desc string
			pkg  string
			bad  func(string) string
		}{"a data plane imports no other role: " + role, role, func(d string) string {
			if isRole(d) && d != role && !strings.HasPrefix(d, role+"/") && !(role == "internal/dnslb" && d == "internal/discovery") {
				return "another role; the supervisor wires roles together"
			}
			return ""
		}})
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if _, ok := g[tc.pkg]; !ok {
				t.Fatalf("package %s not found", tc.pkg)
			}
			for _, d := range deps(g, tc.pkg) {
				if why := tc.bad(d); why != "" {
					t.Errorf("%s imports %s (directly or through another package): %s", tc.pkg, d, why)
				}
			}
		})
	}
}

// TestBinaryLinksTheChecks: the checks config borrows are registered by
// packages the strata binary links, so `strata validate` runs them all.
func TestBinaryLinksTheChecks(t *testing.T) {
	d := deps(graph(t), "cmd/strata")
	for _, p := range []string{"internal/balance", "internal/upstream", "internal/dnssyntax"} {
		if !slices.Contains(d, p) {
			t.Errorf("cmd/strata does not link %s, whose checks config relies on", p)
		}
	}
}
