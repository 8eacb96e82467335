package dnssyntax

import (
	"strings"
	"testing"
)

func TestParseRecord(t *testing.T) {
	rr, err := ParseRecord("example.test.", "www 60 IN A 192.0.2.1", 3600)
	if err != nil || rr.Header().Name != "www.example.test." || rr.Header().Ttl != 60 {
		t.Fatalf("ParseRecord = %v, %v", rr, err)
	}
	rr, err = ParseRecord("example.test.", "@ MX 10 mail", 300)
	if err != nil || rr.Header().Name != "example.test." || rr.Header().Ttl != 300 {
		t.Fatalf("ParseRecord apex = %v, %v", rr, err)
	}
	for _, bad := range []string{"", "www A 192.0.2.1\nx A 192.0.2.2", "www A", "www BOGUS 1"} {
		if _, err := ParseRecord("example.test.", bad, 300); err == nil {
			t.Errorf("ParseRecord(%q) succeeded", bad)
		}
	}
}

// FuzzParseRecord: any line is a record or an error, never a crash, and a
// record is always inside the zone.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{"www A 192.0.2.1", "@ SOA ns hm 1 2 3 4 5", `t TXT "a" "b"`, "_s._tcp SRV 0 1 80 x", "$ORIGIN x.", "a CAA 0 issue \"x\"", "( A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		rr, err := ParseRecord("example.test.", line, 300)
		if err != nil {
			return
		}
		if !strings.HasSuffix(strings.ToLower(rr.Header().Name), "example.test.") {
			t.Fatalf("%q gave %s outside the zone", line, rr)
		}
	})
}
