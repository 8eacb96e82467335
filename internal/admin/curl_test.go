package admin

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/testnet"
)

// The write examples in docs/admin.md use curl, which sends -d bodies as
// application/x-www-form-urlencoded and no Origin; they must work as shown.
func TestCurlExamples(t *testing.T) {
	curl := testnet.NeedTool(t, "curl", "curl")
	const token = "t0ken"
	f := newFixture(t, func(o *Options) { o.Token = token })
	tests := []struct {
		desc string
		args []string
		want string // substring of the output
	}{
		{desc: "put with token", args: []string{"-s", "-X", "PUT", "-H", "Authorization: Bearer " + token, f.base + "/api/v1/pools/web/backends/b", "-d", `{"weight": 3, "state": "up"}`}, want: `"weight": 3`},
		{desc: "drain with token", args: []string{"-s", "-X", "POST", "-H", "Authorization: Bearer " + token, f.base + "/api/v1/pools/web/backends/b/drain"}, want: `"status": "draining"`},
		{desc: "put without token", args: []string{"-si", "-X", "PUT", f.base + "/api/v1/pools/web/backends/b", "-d", `{"weight": 3}`}, want: "HTTP/1.1 401 Unauthorized"},
		{desc: "status", args: []string{"-s", f.base + "/api/v1/status"}, want: `"version": "v1.2.3-test"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			out, err := exec.Command(curl, tt.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl %v: %v\n%s", tt.args, err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("curl %v:\n%s\nwant it to contain %q", tt.args, out, tt.want)
			}
		})
	}
	b := f.web.Snapshot().Lookup("b")
	if b.Weight != 3 || b.State.String() != "draining" {
		t.Errorf("after the curl writes b = weight %d %v, want 3 draining", b.Weight, b.State)
	}
	var st Status
	out, _ := exec.Command(curl, "-s", f.base+"/api/v1/status").Output()
	if err := json.Unmarshal(out, &st); err != nil {
		t.Errorf("status through curl is not JSON: %v", err)
	}
}
