package registry

import (
	"fmt"
	"testing"
)

func ips(r Result) []string {
	var s []string
	for _, in := range r.Instances {
		s = append(s, in.IP)
	}
	return s
}

func TestSelect(t *testing.T) {
	all := []Instance{
		inst("127.0.1.1", 80, "a", true, "version", "1"),
		inst("127.0.1.2", 80, "a", false, "version", "1"),
		inst("127.0.1.3", 80, "a", true, "version", "2"),
		inst("127.0.2.1", 80, "b", true, "version", "1"),
		inst("127.0.3.1", 80, "c", true, "version", "1"),
	}
	disabled := inst("127.0.1.4", 80, "a", true)
	disabled.Enabled = false
	for _, tc := range []struct {
		desc      string
		svc       Service
		extra     []Instance
		q         Query
		want      string
		protected bool
		zones     string
	}{
		{desc: "all", q: Query{}, want: "[127.0.1.1 127.0.1.2 127.0.1.3 127.0.2.1 127.0.3.1]"},
		{desc: "healthy", q: Query{HealthyOnly: true}, want: "[127.0.1.1 127.0.1.3 127.0.2.1 127.0.3.1]"},
		{desc: "disabled is not healthy", extra: []Instance{disabled}, q: Query{HealthyOnly: true, Clusters: []string{"a"}}, want: "[127.0.1.1 127.0.1.3]"},
		{desc: "clusters", q: Query{HealthyOnly: true, Clusters: []string{"b", "c"}}, want: "[127.0.2.1 127.0.3.1]"},
		{desc: "selector", q: Query{HealthyOnly: true, Selector: map[string]string{"version": "2"}}, want: "[127.0.1.3]"},
		{desc: "protection off above threshold", svc: Service{ProtectThreshold: 0.6}, q: Query{HealthyOnly: true, Clusters: []string{"a"}}, want: "[127.0.1.1 127.0.1.3]"},
		{desc: "protection on below threshold", svc: Service{ProtectThreshold: 0.7}, q: Query{HealthyOnly: true, Clusters: []string{"a"}}, want: "[127.0.1.1 127.0.1.2 127.0.1.3]", protected: true},
		{desc: "zone a healthy enough", svc: Service{Failover: Failover{Threshold: 0.5}}, q: Query{HealthyOnly: true, Zone: "a"}, want: "[127.0.1.1 127.0.1.3]", zones: "[a]"},
		{desc: "zone a fails over in order", svc: Service{Failover: Failover{Threshold: 0.7, Order: map[string][]string{"a": {"c", "b"}}}}, q: Query{HealthyOnly: true, Zone: "a"}, want: "[127.0.1.1 127.0.1.3 127.0.3.1]", zones: "[a c]"},
		{desc: "empty zone fails over", svc: Service{}, q: Query{HealthyOnly: true, Zone: "z"}, want: "[127.0.1.1 127.0.1.3]", zones: "[z a]"},
		{desc: "gray by tag", svc: Service{Routes: []Route{{Name: "canary", CallerTags: map[string]string{"team": "x"}, Select: map[string]string{"version": "2"}}}}, q: Query{HealthyOnly: true, CallerTags: map[string]string{"team": "x"}}, want: "[127.0.1.3]"},
		{desc: "gray tag mismatch", svc: Service{Routes: []Route{{Name: "canary", CallerTags: map[string]string{"team": "x"}, Select: map[string]string{"version": "2"}}}}, q: Query{HealthyOnly: true, CallerTags: map[string]string{"team": "y"}}, want: "[127.0.1.1 127.0.1.3 127.0.2.1 127.0.3.1]"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			v := View{Service: tc.svc, Instances: append(append([]Instance(nil), all...), tc.extra...)}
			sortInstances(v.Instances)
			r := Select(v, true, &tc.q)
			if got := fmt.Sprint(ips(r)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if r.Protected != tc.protected {
				t.Errorf("protected = %v, want %v", r.Protected, tc.protected)
			}
			if tc.zones != "" && fmt.Sprint(r.Zones) != tc.zones {
				t.Errorf("zones %v, want %s", r.Zones, tc.zones)
			}
		})
	}
}

func TestGrayPercent(t *testing.T) {
	svc := Service{Routes: []Route{{Name: "v2", Percent: 10, Select: map[string]string{"version": "2"}}}}
	v := View{Service: svc, Instances: []Instance{inst("127.0.0.1", 80, "", true, "version", "1"), inst("127.0.0.2", 80, "", true, "version", "2")}}
	gray := 0
	const callers = 10000
	for i := 0; i < callers; i++ {
		q := Query{HealthyOnly: true, Caller: fmt.Sprintf("127.1.%d.%d", i/256, i%256)}
		r := Select(v, true, &q)
		if r.Route == "v2" {
			gray++
			if len(r.Instances) != 1 || r.Instances[0].IP != "127.0.0.2" {
				t.Fatalf("gray caller got %v", ips(r))
			}
		}
		// The split is stable: the same caller lands on the same side.
		if r2 := Select(v, true, &q); r2.Route != r.Route {
			t.Fatalf("caller %s flipped sides", q.Caller)
		}
	}
	if gray < callers*8/100 || gray > callers*12/100 {
		t.Fatalf("%d of %d callers routed to v2, want about 10%%", gray, callers)
	}
}
