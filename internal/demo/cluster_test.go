package demo

import (
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/config"
)

// TestClusterPrereqsSayWhatIsMissing: without root and without FRR the
// cluster demo names both, with the package to install.
func TestClusterPrereqsSayWhatIsMissing(t *testing.T) {
	got := strings.Join(clusterPrereqs(1000, t.TempDir()+"/no-frr/"), "\n")
	for _, want := range []string{"it needs root", "Debian package frr", "apt-get install frr"} {
		if !strings.Contains(got, want) {
			t.Errorf("clusterPrereqs = %q, want it to say %q", got, want)
		}
	}
}

// TestClusterTemplates: every config of the cluster demo renders and
// strata's load, and the
// router's config has a neighbor per l4 node and ECMP.
func TestClusterTemplates(t *testing.T) {
	c := &cluster{setup: newClusterSetup()}
	c.tmpl = parseClusterTemplates()
	for _, name := range []string{"frr", "registry", "l4", "l7"} {
		var b strings.Builder
		s := c.setup
		s.Node = s.L4[0]
		if name == "l7" {
			s.Node = s.L7[0]
		}
		if err := c.tmpl.ExecuteTemplate(&b, name, s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name != "frr" {
			if _, err := config.Parse(name+".yaml", []byte(b.String())); err != nil {
				t.Errorf("the %s config does not load: %v", name, err)
			}
		}
		if name == "frr" {
			for _, want := range []string{"maximum-paths 8", "neighbor 10.77.0.11 remote-as 65001", "neighbor 10.77.0.13 remote-as 65001", "timers bgp 1 3"} {
				if !strings.Contains(b.String(), want) {
					t.Errorf("the router's config lacks %q:\n%s", want, b.String())
				}
			}
		}
	}
}
