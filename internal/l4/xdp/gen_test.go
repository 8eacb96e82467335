package xdp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/testnet"
)

// TestObjectsMatchSources recompiles lb.c and decap.c with the very
// commands of gen.go's go:generate lines, into a temporary directory,
// and checks that the committed objects are what they produce: a change
// to a .c file without "make bpf" fails here. It needs clang and
// libbpf's headers (scripts/deps.sh installs both).
func TestObjectsMatchSources(t *testing.T) {
	testnet.NeedTool(t, "clang", "clang")
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		if testnet.Required() {
			t.Fatal("libbpf's headers are not installed (Debian package libbpf-dev; scripts/deps.sh installs it)")
		}
		t.Skip("libbpf's headers are not installed (Debian package libbpf-dev; scripts/deps.sh installs it)")
	}
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n := 0
	for _, line := range strings.Split(string(src), "\n") {
		cmdline, ok := strings.CutPrefix(line, "//go:generate ")
		if !ok {
			continue
		}
		args := splitArgs(cmdline)
		// bpf2go's own flags end at the stem and the source file; the
		// output directory goes before them.
		i := indexOf(args, "-cc")
		args = append(args[:i:i], append([]string{"-output-dir", dir}, args[i:]...)...)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "GOPACKAGE=xdp")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmdline, err, out)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no go:generate line in gen.go")
	}
	objs, _ := filepath.Glob(filepath.Join(dir, "*.o"))
	if len(objs) != n {
		t.Fatalf("bpf2go made %d objects for %d sources", len(objs), n)
	}
	for _, fresh := range objs {
		name := filepath.Base(fresh)
		want, err := os.ReadFile(fresh)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what its source compiles to: run make bpf and commit the result", name)
		}
	}
}

// splitArgs splits a go:generate line into words, honouring double quotes.
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			any = true
		case r == ' ' && !quoted:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return len(s)
}
