package l7

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAccessLogFormats(t *testing.T) {
	e := logEntry{
		start: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), duration: 1500 * time.Microsecond,
		client: "203.0.113.7", method: "GET", uri: `/a "b"`, proto: "HTTP/1.1", host: "app.test",
		agent: "curl/8\x01", status: 200, bytes: 19, listener: "web", route: "api", backend: "b1",
	}
	tests := []struct{ desc, got, want string }{
		{desc: "combined", got: string(appendCombined(nil, &e)),
			want: `203.0.113.7 - - [25/Nov/2026:12:00:00 +0000] "GET /a \x22b\x22 HTTP/1.1" 200 19 "-" "curl/8\x01"` + "\n"},
		{desc: "json", got: string(appendJSON(nil, &e)),
			want: `{"time":"2026-11-25T12:00:00.000Z","client":"203.0.113.7","method":"GET","uri":"/a \"b\"","proto":"HTTP/1.1","host":"app.test","status":200,"bytes":19,"duration_ms":1.500,"referer":"","user_agent":"curl/8\u0001","listener":"web","route":"api","backend":"b1"}` + "\n"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.desc, tc.got, tc.want)
		}
	}
}

// FuzzAppendJSONString checks that any bytes a client sends become a valid
// JSON string that decodes to the input (valid UTF-8) or to the input
// with invalid bytes replaced.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\`, "\x00\x1f\x7f", "é✓", "\xff\xfe", "a\u2028b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q encoded as %s: %v", s, out, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); utf8.ValidString(s) && back != s || !utf8.ValidString(s) && len(back) < len(want)-3*len(s) {
			t.Fatalf("%q round-tripped to %q", s, back)
		}
		comb := appendEscaped(nil, s)
		for _, c := range comb {
			if c < 0x20 || c >= 0x7f || c == '"' {
				t.Fatalf("combined escape of %q left byte %#x", s, c)
			}
		}
	})
}
