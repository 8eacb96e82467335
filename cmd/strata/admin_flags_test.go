package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
)

// The l7, l4 and dns one-liners take the admin token from --token-file,
// which makes a config that an admin listener off loopback passes; ctl
// reads its bearer token the same way and refuses a world-readable file.
func TestOneLinersTokenFile(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"l7", "--listen", "127.0.0.1:8080", "--to", "127.0.0.1:9000", "--admin", "0.0.0.0:9911", "--token-file", tok, "--print"},
		{"l4", "--listen", "127.0.0.1:8000", "--to", "127.0.0.1:9000", "--admin", "0.0.0.0:9911", "--token-file", tok, "--print"},
		{"dns", "--zone", "example.test", "--a", "www=192.0.2.1", "--admin", "0.0.0.0:9911", "--token-file", tok, "--print-config"},
	} {
		var out, errb bytes.Buffer
		if code := Main(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		c, err := config.Parse("printed", out.Bytes())
		if err != nil {
			t.Fatalf("%v: the printed config does not parse: %v\n%s", args, err, out.String())
		}
		if c.Admin.TokenFile != tok || c.Admin.Listen != "0.0.0.0:9911" {
			t.Errorf("%v: admin = %+v, want listen 0.0.0.0:9911 and token_file %s", args, c.Admin, tok)
		}
	}

	open := testnet.WriteMode(t, filepath.Join(dir, "open"), "t0ken\n", 0o644)
	var out, errb bytes.Buffer
	if code := Main([]string{"ctl", "services", "--admin", "127.0.0.1:1", "--token-file", open}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "world-readable") {
		t.Errorf("ctl with a world-readable --token-file: exit %d, %q; want 2 and world-readable", code, errb.String())
	}
}
