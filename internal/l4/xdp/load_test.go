package xdp

import (
	"testing"

	"github.com/strata-lb/strata/internal/testnet"
)

// TestLoad loads both programs into the kernel: the verifier accepts them.
func TestLoad(t *testing.T) {
	testnet.NeedRoot(t)
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	var objs decapObjects
	if err := loadDecapObjects(&objs, nil); err != nil {
		t.Fatal(err)
	}
	objs.Close()
}
