package l4

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-lb/strata/internal/balance"
	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/upstream"
)

// fingerprintChildEnv makes the test binary a child of
// TestFingerprintAcrossProcesses (see TestMain): it builds a server whose
// mh service's pool gets the backends in the env's order, prints the
// service's fingerprint and exits.
const fingerprintChildEnv = "STRATA_L4_FINGERPRINT_BACKENDS"

// fingerprintChild is the child's whole work; backends is
// "name=addr:weight,…" in the order the pool is to be given them.
func fingerprintChild(backends string) error {
	b, err := balance.Builder("maglev", balance.Options{})
	if err != nil {
		return err
	}
	pool := upstream.NewPool("app", upstream.Options{Builder: b})
	defer pool.Close()
	var specs []upstream.Spec
	for _, f := range strings.Split(backends, ",") {
		name, rest, _ := strings.Cut(f, "=")
		i := strings.LastIndexByte(rest, ':')
		var w int
		fmt.Sscan(rest[i+1:], &w)
		specs = append(specs, upstream.Spec{Name: name, Addr: rest[:i], Weight: w})
	}
	if err := pool.Update(specs); err != nil {
		return err
	}
	s, err := NewServer(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	sc := svcConfig("web", "tcp", func(c *config.L4Service) { c.Scheduler = "mh" })
	if err := s.Apply(&config.L4{Services: []config.L4Service{sc}}, map[string]*upstream.Pool{"app": pool}); err != nil {
		return err
	}
	fmt.Printf("fingerprint=%s\n", s.Services()[0].Fingerprint)
	return nil
}

// TestFingerprintAcrossProcesses: two processes that are given one pool
// in different orders build Maglev tables with one fingerprint, so two
// nodes can be compared by it; a pool that differs in a backend, an
// address or a weight has another.
func TestFingerprintAcrossProcesses(t *testing.T) {
	run := func(backends string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fingerprintChildEnv+"="+backends)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child for %s: %v\n%s", backends, err, out)
		}
		m := regexp.MustCompile(`fingerprint=([0-9a-f]{16})\n`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("child for %s printed no fingerprint:\n%s", backends, out)
		}
		return string(m[1])
	}
	const (
		a = "a=10.0.0.1:80:1"
		b = "b=10.0.0.2:80:1"
		c = "c=10.0.0.3:80:2"
	)
	forward := run(strings.Join([]string{a, b, c}, ","))
	backward := run(strings.Join([]string{c, b, a}, ","))
	if forward != backward {
		t.Errorf("one pool in two orders: fingerprints %s and %s, want equal", forward, backward)
	}
	t.Logf("fingerprint of the pool in either order: %s", forward)
	for _, tc := range []struct{ desc, pool string }{
		{"a backend fewer", strings.Join([]string{a, b}, ",")},
		{"another address", strings.Join([]string{a, "b=10.0.0.9:80:1", c}, ",")},
		{"another weight", strings.Join([]string{a, b, "c=10.0.0.3:80:1"}, ",")},
	} {
		if fp := run(tc.pool); fp == forward {
			t.Errorf("%s: fingerprint %s, the same as the original pool's", tc.desc, fp)
		}
	}
}
