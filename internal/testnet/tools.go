package testnet

import (
	"os"
	"os/exec"
	"testing"
)

// Required reports whether a missing tool must fail a test rather than skip
// it: under CI=true or STRATA_REQUIRE_TOOLS=1 (scripts/deps.sh installs every
// tool the tests drive, so a missing one is a broken set-up, not a reason to
// pass without testing).
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("STRATA_REQUIRE_TOOLS") == "1"
}

// NeedTool returns the path of the program name, which Debian package pkg
// ships. When it is missing the test fails with the tool's name under
// Required(), and is skipped otherwise. Call it before starting any server,
// so no test skips half-way.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if Required() {
		t.Fatalf("%s not installed (Debian package %s; scripts/deps.sh installs it)", name, pkg)
	}
	t.Skipf("%s not installed (Debian package %s; scripts/deps.sh installs it)", name, pkg)
	return ""
}

// NeedRoot fails (under Required()) or skips a test that needs root, for
// network namespaces, veth pairs and XDP.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if Required() {
		t.Fatalf("this test needs root (network namespaces)")
	}
	t.Skip("this test needs root (network namespaces)")
}
