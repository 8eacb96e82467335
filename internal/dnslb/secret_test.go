package dnslb

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

// A TSIG key from secret_file signs transfers like an inline one; a
// world-readable or malformed file stops the config from being applied.
func TestTSIGSecretFile(t *testing.T) {
	pools := map[string]*upstream.Pool{"web": newPool(t, "web", []string{"192.0.2.1:80"}, nil)}
	write := func(body string, mode os.FileMode) string {
		return testnet.WriteMode(t, filepath.Join(t.TempDir(), "tsig"), body, mode)
	}
	withKeyFile := func(path string) *config.DNS {
		dc := lbConfig(config.Balanced{Pool: "web"})
		dc.TSIGKeys = []config.TSIGKey{{Name: "xfr-key", Algorithm: "hmac-sha256", SecretFile: path}}
		dc.Zones[0].Transfer = &config.Transfer{Allow: []string{"127.0.0.0/8"}, Key: "xfr-key"}
		return dc
	}

	_, addr := startServer(t, withKeyFile(write(testSecret+"\n", 0o600)), pools)
	tr := &dns.Transfer{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, TsigSecret: map[string]string{"xfr-key.": testSecret}}
	m := new(dns.Msg)
	m.SetAxfr("example.test.")
	m.SetTsig("xfr-key.", dns.HmacSHA256, 300, time.Now().Unix())
	ch, err := tr.In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("transfer signed with the file's key: %v", env.Error)
		}
		n += len(env.RR)
	}
	if n < 3 {
		t.Fatalf("transfer gave %d records", n)
	}

	for _, tc := range []struct {
		desc, body string
		mode       os.FileMode
		want       string
	}{
		{"world-readable", testSecret, 0o644, "world-readable"},
		{"not base64", "not a key", 0o600, "at least 16 bytes in base64"},
	} {
		s, err := NewServer(Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Apply(withKeyFile(write(tc.body, tc.mode)), pools)
		if err == nil || !strings.Contains(err.Error(), "secret_file") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Apply = %v, want an error naming secret_file and %q", tc.desc, err, tc.want)
		}
		s.Shutdown(t.Context())
	}
}
