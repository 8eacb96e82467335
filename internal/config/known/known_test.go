package known

import "testing"

// TestUnregistered: with nothing registered, every check passes and the
// fallback DNS syntax still compares names, so that config finds
// duplicate zones in a program without a DNS library.
func TestUnregistered(t *testing.T) {
	if Algorithm("nonsense") != nil || BackendState("nonsense") != nil || Algorithms() != nil {
		t.Error("an unregistered check failed")
	}
	d := DNSSyntax()
	for _, tc := range []struct {
		desc          string
		parent, child string
		want          bool
	}{
		{"same", "example.test.", "example.test.", true},
		{"under", "example.test.", "www.example.test.", true},
		{"root", ".", "www.example.test.", true},
		{"suffix, not a label", "example.test.", "badexample.test.", false},
		{"above", "www.example.test.", "example.test.", false},
	} {
		if got := d.IsSubDomain(tc.parent, tc.child); got != tc.want {
			t.Errorf("%s: IsSubDomain(%q, %q) = %v, want %v", tc.desc, tc.parent, tc.child, got, tc.want)
		}
	}
	if d.Fqdn("example.test") != "example.test." || d.Fqdn("example.test.") != "example.test." {
		t.Error("Fqdn")
	}
}
