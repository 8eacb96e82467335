package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// secretsYAML sets every secret field this file's owners keep inline.
const secretsYAML = `admin:
  token: admin-token-value-1
pools:
  - name: app
    registry:
      servers: [127.0.0.1:8848]
      service: s
      token: pool-registry-token-2
l7:
  listeners:
    - listen: 127.0.0.1:8080
      routes:
        - pool: app
          sticky: {secret: sticky-secret-value-3456}
dns:
  listen: [127.0.0.1:5353]
  tsig_keys:
    - name: xfr
      secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
  zones:
    - name: example.test
      records: ["@ SOA ns1 hostmaster 1 3600 600 86400 5", "@ NS ns1", "ns1 A 127.0.0.1"]
  registry:
    domain: strata.test
    servers: [127.0.0.1:8848]
    token: dns-registry-token-4
`

// A Config rendered as JSON (golden files, debugging output) carries no
// secret: only the *_file twins, which name a path.
func TestSecretsStayOutOfJSON(t *testing.T) {
	c, err := Parse("t.yaml", []byte(secretsYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Token != "admin-token-value-1" || c.L7.Listeners[0].Routes[0].Sticky.Secret == "" {
		t.Fatal("the secrets were not parsed")
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"admin-token-value-1", "pool-registry-token-2", "sticky-secret-value-3456", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==", "dns-registry-token-4"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the JSON of the config holds the secret %q", secret)
		}
	}
}

// Each secret and its *_file twin: one or the other, not both, with the
// error naming the twin; the twin alone is accepted, because its file is
// read when the role starts, not when the config is checked.
func TestSecretFileTwins(t *testing.T) {
	for _, tc := range []struct{ old, both, alone, want string }{
		{"token: admin-token-value-1", "token: admin-token-value-1\n  token_file: /run/t", "token_file: /run/t", "admin.token_file: set token or token_file, not both"},
		{"token: pool-registry-token-2", "token: pool-registry-token-2\n      token_file: /run/t", "token_file: /run/t", "pools[0].registry.token_file: set token or token_file, not both"},
		{"sticky: {secret: sticky-secret-value-3456}", "sticky: {secret: sticky-secret-value-3456, secret_file: /run/t}", "sticky: {secret_file: /run/t}", "l7.listeners[0].routes[0].sticky.secret_file: set secret or secret_file, not both"},
		{`secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="`, `secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="` + "\n      secret_file: /run/t", "secret_file: /run/t", "dns.tsig_keys[0].secret_file: set secret or secret_file, not both"},
		{"token: dns-registry-token-4", "token: dns-registry-token-4\n    token_file: /run/t", "token_file: /run/t", "dns.registry.token_file: set token or token_file, not both"},
	} {
		if !strings.Contains(secretsYAML, tc.old) {
			t.Fatalf("%q not in the config", tc.old)
		}
		_, err := Parse("t.yaml", []byte(strings.Replace(secretsYAML, tc.old, tc.both, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error = %v, want %q", err, tc.want)
		}
		if _, err := Parse("t.yaml", []byte(strings.Replace(secretsYAML, tc.old, tc.alone, 1))); err != nil {
			t.Errorf("%s alone: %v", tc.alone, err)
		}
	}
}
