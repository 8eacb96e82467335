package l4

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine they started is
// still running after the last one: a server that Shutdown does not stop,
// a connection nobody closes. Run with fingerprintChildEnv set, the
// binary is a child of TestFingerprintAcrossProcesses instead.
func TestMain(m *testing.M) {
	if b := os.Getenv(fingerprintChildEnv); b != "" {
		if err := fingerprintChild(b); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// GoBGP's Serve cannot be stopped (see bgp.Start): each speaker a
	// test starts leaves its loop behind.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/osrg/gobgp/v3/pkg/server.(*BgpServer).Serve"))
}
