package l7

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// sticky.secret_file signs cookies exactly as the same secret inline; a
// world-readable or short file is refused with an error naming it.
func TestStickySecretFile(t *testing.T) {
	pool := newPool(t, "p", "127.0.0.1:1")
	write := func(body string, mode os.FileMode) string {
		return testnet.WriteMode(t, filepath.Join(t.TempDir(), "sticky"), body, mode)
	}
	const secret = "a-sticky-secret-of-32-bytes-long"
	inline, err := newSticky(&config.RouteSticky{Secret: secret}, "ln", "r", []*upstream.Pool{pool}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := newSticky(&config.RouteSticky{SecretFile: write(secret+"\n", 0o600)}, "ln", "r", []*upstream.Pool{pool}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := inline.value("p", "x"), fromFile.value("p", "x"); a != b {
		t.Fatalf("the file's secret signs %q, the inline one %q", b, a)
	}
	for _, tc := range []struct {
		desc, body string
		mode       os.FileMode
		want       string
	}{
		{"world-readable", secret, 0o644, "world-readable"},
		{"too short", "short", 0o600, "at least 16 bytes"},
	} {
		p := write(tc.body, tc.mode)
		_, err := newSticky(&config.RouteSticky{SecretFile: p}, "ln", "r", []*upstream.Pool{pool}, quietLogger())
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s and %q", tc.desc, err, p, tc.want)
		}
	}
}
