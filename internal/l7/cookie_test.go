package l7

import (
	"net/http"
	"testing"
)

func TestCookieValue(t *testing.T) {
	tests := []struct {
		desc  string
		lines []string
		name  string
		want  string
		ok    bool
	}{
		{desc: "one of several", lines: []string{"a=1; sid=xyz; b=2"}, name: "sid", want: "xyz", ok: true},
		{desc: "second line", lines: []string{"a=1", "sid=2"}, name: "sid", want: "2", ok: true},
		{desc: "quoted", lines: []string{`sid="q"`}, name: "sid", want: "q", ok: true},
		{desc: "spaces around the name, kept in the value as net/http does", lines: []string{"  sid = v ;x=1"}, name: "sid", want: " v", ok: true},
		{desc: "invalid value skipped for the next", lines: []string{`sid=a\b; sid=ok`}, name: "sid", want: "ok", ok: true},
		{desc: "absent", lines: []string{"a=1"}, name: "sid"},
		{desc: "prefix of another name", lines: []string{"sidx=1"}, name: "sid"},
		{desc: "empty value", lines: []string{"sid="}, name: "sid", want: "", ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, ok := cookieValue(tc.lines, tc.name)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("cookieValue = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzCookieValue checks cookieValue against net/http's own Cookie
// parsing, which it must agree with so that hash keys, splits and sticky
// sessions see the cookies the backend sees.
func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{"a=1; sid=xyz", `sid="q"`, "sid=a b", "sid", " sid =v", "sid=\"\"; sid=2", "x=\x7f; sid=\t"} {
		f.Add(s, "sid")
	}
	f.Fuzz(func(t *testing.T, line, name string) {
		if !isToken(name) {
			return
		}
		r := &http.Request{Header: http.Header{"Cookie": {line}}}
		got, ok := cookieValue(r.Header["Cookie"], name)
		c, err := r.Cookie(name)
		if (err == nil) != ok {
			t.Fatalf("line %q name %q: cookieValue ok=%v, net/http err=%v", line, name, ok, err)
		}
		if ok && c.Value != got {
			t.Fatalf("line %q name %q: cookieValue %q, net/http %q", line, name, got, c.Value)
		}
	})
}
