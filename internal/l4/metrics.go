package l4

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes per-service and per-backend counters to Prometheus,
// read from the current runtime's services at scrape time.
type collector struct{ s *Server }

var (
	descSvcConns   = prometheus.NewDesc("strata_l4_service_connections_total", "Connections and UDP sessions a virtual service accepted.", []string{"service", "protocol"}, nil)
	descSvcActive  = prometheus.NewDesc("strata_l4_service_connections", "Connections of a virtual service now, by state (active: established; inactive: half-closed TCP and UDP sessions).", []string{"service", "protocol", "state"}, nil)
	descSvcBytes   = prometheus.NewDesc("strata_l4_service_bytes_total", "Bytes relayed by a virtual service, by direction (in: client to backend).", []string{"service", "protocol", "direction"}, nil)
	descSvcPackets = prometheus.NewDesc("strata_l4_service_datagrams_total", "UDP datagrams relayed by a virtual service, by direction.", []string{"service", "protocol", "direction"}, nil)
	descSvcDrops   = prometheus.NewDesc("strata_l4_service_drops_total", "Connections a virtual service refused or lost before they reached a backend, by reason.", []string{"service", "protocol", "reason"}, nil)
	descDestConns  = prometheus.NewDesc("strata_l4_backend_connections_total", "Connections and UDP sessions a virtual service sent to a backend.", []string{"service", "backend"}, nil)
	descDestActive = prometheus.NewDesc("strata_l4_backend_connections", "Connections of a virtual service to a backend now, by state.", []string{"service", "backend", "state"}, nil)
	descDestBytes  = prometheus.NewDesc("strata_l4_backend_bytes_total", "Bytes relayed between a virtual service and a backend, by direction.", []string{"service", "backend", "direction"}, nil)
	descXDPPackets = prometheus.NewDesc("strata_l4_xdp_packets_total", "Packets the XDP data plane forwarded to a real of a dr or tunnel service (client to server only: replies never cross the balancer).", []string{"service", "backend"}, nil)
	descXDPBytes   = prometheus.NewDesc("strata_l4_xdp_bytes_total", "Bytes of IP packets the XDP data plane forwarded to a real of a dr or tunnel service.", []string{"service", "backend"}, nil)
	descXDPFlows   = prometheus.NewDesc("strata_l4_xdp_flows_total", "New flows the XDP data plane sent to a real: first packets not in the connection table, and every TCP SYN.", []string{"service", "backend"}, nil)
	descXDPEvents  = prometheus.NewDesc("strata_l4_xdp_events_total", "Packets the XDP program did not forward by a service's table, by what it did (passed: not for a VIP; fragments: passed to the stack; no_real: dropped, the service had no real; icmp_forwarded: fragmentation-needed errors sent to a flow's real; encap_failed: dropped, no room for the outer header).", []string{"event"}, nil)
	descConnTable  = prometheus.NewDesc("strata_l4_connection_table_entries", "Entries in the connection table, across every runtime.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSvcConns, descSvcActive, descSvcBytes, descSvcPackets, descSvcDrops, descDestConns, descDestActive, descDestBytes, descConnTable, descXDPPackets, descXDPBytes, descXDPFlows, descXDPEvents} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	for _, svc := range *c.s.services.Load() {
		n, p, k := svc.name, svc.proto, svc.counters
		ch <- prometheus.MustNewConstMetric(descSvcConns, counter, float64(k.conns.Load()), n, p)
		ch <- prometheus.MustNewConstMetric(descSvcActive, gauge, float64(k.active.Load()), n, p, "active")
		ch <- prometheus.MustNewConstMetric(descSvcActive, gauge, float64(k.inactive.Load()), n, p, "inactive")
		ch <- prometheus.MustNewConstMetric(descSvcBytes, counter, float64(k.inBytes.Load()), n, p, "in")
		ch <- prometheus.MustNewConstMetric(descSvcBytes, counter, float64(k.outBytes.Load()), n, p, "out")
		ch <- prometheus.MustNewConstMetric(descSvcPackets, counter, float64(k.inPkts.Load()), n, p, "in")
		ch <- prometheus.MustNewConstMetric(descSvcPackets, counter, float64(k.outPkts.Load()), n, p, "out")
		for i, reason := range dropNames {
			ch <- prometheus.MustNewConstMetric(descSvcDrops, counter, float64(k.drops[i].Load()), n, p, reason)
		}
		for _, b := range svc.pool.Snapshot().All {
			d := k.dest(b)
			ch <- prometheus.MustNewConstMetric(descDestConns, counter, float64(d.conns.Load()), n, b.Name)
			ch <- prometheus.MustNewConstMetric(descDestActive, gauge, float64(d.active.Load()), n, b.Name, "active")
			ch <- prometheus.MustNewConstMetric(descDestActive, gauge, float64(d.inactive.Load()), n, b.Name, "inactive")
			ch <- prometheus.MustNewConstMetric(descDestBytes, counter, float64(d.inBytes.Load()), n, b.Name, "in")
			ch <- prometheus.MustNewConstMetric(descDestBytes, counter, float64(d.outBytes.Load()), n, b.Name, "out")
		}
	}
	ch <- prometheus.MustNewConstMetric(descConnTable, gauge, float64(c.s.conns.len()))
	// The kernel's services: the service totals in the proxy's metrics
	// (connections are new flows, bytes are client to server), and the
	// per-real counters of the XDP program.
	for _, st := range c.s.kernel.status() {
		n, p := st.Name, st.Protocol
		ch <- prometheus.MustNewConstMetric(descSvcConns, counter, float64(st.Stats.Conns), n, p)
		ch <- prometheus.MustNewConstMetric(descSvcBytes, counter, float64(st.Stats.InBytes), n, p, "in")
		for _, b := range st.Backends {
			ch <- prometheus.MustNewConstMetric(descXDPPackets, counter, float64(b.Stats.InPkts), n, b.Name)
			ch <- prometheus.MustNewConstMetric(descXDPBytes, counter, float64(b.Stats.InBytes), n, b.Name)
			ch <- prometheus.MustNewConstMetric(descXDPFlows, counter, float64(b.Stats.Conns), n, b.Name)
		}
	}
	for event, v := range c.s.kernel.global() {
		ch <- prometheus.MustNewConstMetric(descXDPEvents, counter, float64(v), event)
	}
}
