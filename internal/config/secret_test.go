package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/testnet"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		return testnet.WriteMode(t, filepath.Join(dir, name), body, mode)
	}
	for _, tc := range []struct {
		desc, body string
		mode       os.FileMode
		want       string
		wantErr    string
	}{
		{desc: "owner only, newline trimmed", body: "s3cret\n", mode: 0o600, want: "s3cret"},
		{desc: "group readable is fine", body: "s3cret", mode: 0o640, want: "s3cret"},
		{desc: "world-readable is refused", body: "s3cret", mode: 0o644, wantErr: "world-readable (mode 0644)"},
		{desc: "world-readable only is refused", body: "s3cret", mode: 0o604, wantErr: "world-readable"},
		{desc: "empty is refused", body: " \n", mode: 0o600, wantErr: "is empty"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.desc, " ", "_"), tc.body, tc.mode)
			got, err := ReadSecretFile(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("err = %v, want one naming %s and containing %q", err, p, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file was read")
	}
	if _, err := ReadSecretFile(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("a directory: err = %v", err)
	}
}
