//go:build !linux

package bgp

// probeMD5 leaves the check to GoBGP where strata does not know the
// kernel's interface.
func probeMD5() error { return nil }
