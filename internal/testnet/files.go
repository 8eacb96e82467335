package testnet

import (
	"os"
	"testing"
)

// WriteMode writes body to path with exactly mode — past the umask, which
// os.WriteFile's mode passes through, and over the mode of a file already
// there — and returns path. Tests of secret files need the exact mode: a
// world-readable one must be refused, a group-readable one read.
func WriteMode(t testing.TB, path, body string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}
