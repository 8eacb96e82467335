package supervisor

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/testnet"
)

// secretFile writes body to a file of the given mode and returns its path.
func secretFile(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	return testnet.WriteMode(t, filepath.Join(t.TempDir(), "secret"), body, mode)
}

// admin.token_file: a world-readable file stops the start with an error
// naming it; a private one gives the token that writes then need.
func TestAdminTokenFile(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	conf := func(file string) string {
		return "admin:\n  listen: 127.0.0.1:0\n  token_file: " + file + "\npools:\n  - name: web\n    backends: [{name: w1, address: 192.0.2.1:80}]\n"
	}
	open := secretFile(t, "file-token-1\n", 0o644)
	path := filepath.Join(t.TempDir(), "strata.yaml")
	writeConfig(t, path, conf(open))
	sup := New(Options{Source: Source{Path: path}, Logger: quiet})
	err := sup.Start()
	if err == nil {
		sup.Shutdown(t.Context())
		t.Fatal("started with a world-readable admin.token_file")
	}
	if !strings.Contains(err.Error(), "admin.token_file") || !strings.Contains(err.Error(), open) || !strings.Contains(err.Error(), "world-readable") {
		t.Fatalf("error = %v, want one naming admin.token_file, the file and world-readable", err)
	}

	writeConfig(t, path, conf(secretFile(t, "file-token-1\n", 0o600)))
	sup = New(Options{Source: Source{Path: path}, Logger: quiet})
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer sup.Shutdown(t.Context())
	drain := "http://" + sup.Admin().Addr().String() + "/api/v1/pools/web/backends/w1/drain"
	for _, tc := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Bearer file-token-1", http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodPost, drain, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("drain with %q = %d, want %d", tc.auth, res.StatusCode, tc.want)
		}
	}
}
