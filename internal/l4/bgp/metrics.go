package bgp

import "github.com/prometheus/client_golang/prometheus"

var (
	descSession    = prometheus.NewDesc("strata_l4_bgp_session_established", "1 while the BGP session with a peer is established, 0 otherwise.", []string{"peer", "state"}, nil)
	descTransition = prometheus.NewDesc("strata_l4_bgp_session_last_transition_timestamp_seconds", "When the BGP session with a peer last changed state, in seconds since the epoch.", []string{"peer", "from", "to"}, nil)
	descFlaps      = prometheus.NewDesc("strata_l4_bgp_session_flaps_total", "Times the BGP session with a peer fell from established.", []string{"peer"}, nil)
	descAnnounced  = prometheus.NewDesc("strata_l4_bgp_announced", "1 for each prefix the node announces to its peers now.", []string{"prefix"}, nil)
	descDrained    = prometheus.NewDesc("strata_l4_bgp_drained", "1 while an operator has drained the node (every VIP withdrawn), 0 otherwise.", nil, nil)
)

// Collector exposes the speaker's sessions and announced prefixes.
type Collector struct {
	S *Speaker
	// Drained, when set, says whether the node is drained.
	Drained func() bool
}

func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSession
	ch <- descTransition
	ch <- descFlaps
	ch <- descAnnounced
	if c.Drained != nil {
		ch <- descDrained
	}
}

func (c Collector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.S.Peers() {
		v := 0.0
		if p.State == "established" {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descSession, prometheus.GaugeValue, v, p.Address, p.State)
		if t := p.LastTransition; t != nil {
			ch <- prometheus.MustNewConstMetric(descTransition, prometheus.GaugeValue, float64(t.At.UnixMilli())/1e3, p.Address, t.From, t.To)
		}
		ch <- prometheus.MustNewConstMetric(descFlaps, prometheus.CounterValue, float64(p.Flaps), p.Address)
	}
	for _, p := range c.S.Announced() {
		ch <- prometheus.MustNewConstMetric(descAnnounced, prometheus.GaugeValue, 1, p.String())
	}
	if c.Drained != nil {
		v := 0.0
		if c.Drained() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descDrained, prometheus.GaugeValue, v)
	}
}
