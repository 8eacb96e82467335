package client_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine they started is
// still running after the last one: a subscription or heartbeat loop that
// Close does not stop, a connection nobody closes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
