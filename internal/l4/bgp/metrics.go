package bgp

import "github.com/prometheus/client_golang/prometheus"

var (
	descSession   = prometheus.NewDesc("strata_l4_bgp_session_established", "1 while the BGP session with a peer is established, 0 otherwise.", []string{"peer", "state"}, nil)
	descAnnounced = prometheus.NewDesc("strata_l4_bgp_announced", "1 for each prefix the node announces to its peers now.", []string{"prefix"}, nil)
)

// Collector exposes the speaker's sessions and announced prefixes.
type Collector struct{ S *Speaker }

func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSession
	ch <- descAnnounced
}

func (c Collector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.S.Peers() {
		v := 0.0
		if p.State == "established" {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descSession, prometheus.GaugeValue, v, p.Address, p.State)
	}
	for _, p := range c.S.Announced() {
		ch <- prometheus.MustNewConstMetric(descAnnounced, prometheus.GaugeValue, 1, p.String())
	}
}
