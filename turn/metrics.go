package turn

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// direction of relayed traffic.
type direction uint8

const (
	clientToPeer direction = iota
	peerToClient
	directionCount
)

var directionNames = [directionCount]string{"client_to_peer", "peer_to_client"}

// capKind is which bandwidth cap dropped a packet.
type capKind uint8

const (
	capAllocation capKind = iota
	capTotal
	capKindCount
)

var capNames = [capKindCount]string{"allocation", "total"}

// transport is how a client reaches the server.
type transport uint8

const (
	transportUDP transport = iota
	transportTCP
	transportTLS
	transportCount
)

var transportNames = [transportCount]string{"udp", "tcp", "tls"}

func (t transport) String() string { return transportNames[t] }

// trafficCounters are kept per allocation, so the packet path touches only
// its own cache lines, and summed when scraped.
type trafficCounters struct {
	bytes   [directionCount]atomic.Uint64
	packets [directionCount]atomic.Uint64
	dropped [directionCount][capKindCount]atomic.Uint64
}

func (c *trafficCounters) addTo(sum *trafficTotals) {
	for d := range directionCount {
		sum.bytes[d] += c.bytes[d].Load()
		sum.packets[d] += c.packets[d].Load()
		for k := range capKindCount {
			sum.dropped[d][k] += c.dropped[d][k].Load()
		}
	}
}

type trafficTotals struct {
	bytes   [directionCount]uint64
	packets [directionCount]uint64
	dropped [directionCount][capKindCount]uint64
}

// counters are the server's event counters, updated off the packet path.
type counters struct {
	refusals    [refusalCount]atomic.Uint64
	created     [transportCount]atomic.Uint64
	permissions atomic.Uint64
}

var (
	descAllocations = prometheus.NewDesc("salon_turn_allocations",
		"Live TURN allocations.", []string{"transport"}, nil)
	descCreated = prometheus.NewDesc("salon_turn_allocations_created_total",
		"TURN allocations created.", []string{"transport"}, nil)
	descConnections = prometheus.NewDesc("salon_turn_connections",
		"Open TCP and TLS client connections.", []string{"transport"}, nil)
	descPermissions = prometheus.NewDesc("salon_turn_permissions_granted_total",
		"Peer addresses admitted by CreatePermission and ChannelBind requests.", nil, nil)
	descBytes = prometheus.NewDesc("salon_turn_relayed_bytes_total",
		"Payload bytes relayed: client_to_peer as sent to peers, peer_to_client as received on relay sockets.",
		[]string{"direction"}, nil)
	descPackets = prometheus.NewDesc("salon_turn_relayed_packets_total",
		"Packets relayed, counted like salon_turn_relayed_bytes_total.", []string{"direction"}, nil)
	descDropped = prometheus.NewDesc("salon_turn_dropped_packets_total",
		"Packets dropped by a bandwidth cap.", []string{"direction", "cap"}, nil)
	descRefusals = prometheus.NewDesc("salon_turn_refusals_total",
		"Requests refused, and allocations ended by the lifetime cap, by reason.", []string{"reason"}, nil)
)

// collector exposes a Server's figures to Prometheus.
type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAllocations, descCreated, descConnections,
		descPermissions, descBytes, descPackets, descDropped, descRefusals} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.stats()
	for t := range transportCount {
		name := transportNames[t]
		ch <- prometheus.MustNewConstMetric(descAllocations, prometheus.GaugeValue, float64(st.allocations[t]), name)
		ch <- prometheus.MustNewConstMetric(descCreated, prometheus.CounterValue, float64(c.s.counters.created[t].Load()), name)
		if t != transportUDP {
			ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(st.connections[t]), name)
		}
	}
	ch <- prometheus.MustNewConstMetric(descPermissions, prometheus.CounterValue, float64(c.s.counters.permissions.Load()))
	for d := range directionCount {
		name := directionNames[d]
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.traffic.bytes[d]), name)
		ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(st.traffic.packets[d]), name)
		for k := range capKindCount {
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.traffic.dropped[d][k]), name, capNames[k])
		}
	}
	for r := refusalNone + 1; r < refusalCount; r++ {
		ch <- prometheus.MustNewConstMetric(descRefusals, prometheus.CounterValue, float64(c.s.counters.refusals[r].Load()), r.String())
	}
}
