package sfu

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector
}

func newMetrics(s *SFU, reg prometheus.Registerer) *metrics {
	m := &metrics{reg: reg}
	if reg == nil {
		return m
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "salon", Subsystem: "sfu", Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "salon", Subsystem: "sfu", Name: name, Help: help}, f)
	}
	m.collectors = []prometheus.Collector{
		counter("rtp_packets_received_total", "RTP packets received from publishers.", func() float64 { return float64(s.counters.PacketsIn.Load()) }),
		counter("rtp_bytes_received_total", "RTP bytes received from publishers.", func() float64 { return float64(s.counters.BytesIn.Load()) }),
		counter("rtp_packets_forwarded_total", "RTP packets forwarded to subscribers.", func() float64 { return float64(s.counters.PacketsOut.Load()) }),
		counter("rtp_bytes_forwarded_total", "RTP bytes forwarded to subscribers.", func() float64 { return float64(s.counters.BytesOut.Load()) }),
		counter("keyframe_requests_total", "Keyframe requests sent to publishers.", func() float64 { return float64(s.counters.KeyframeRequest.Load()) }),
		counter("rtcp_direct_total", "Subscribers' RTCP packets read off the media socket without pion's connection.", func() float64 { return float64(s.rtcp.Taken()) }),
		gauge("calls", "Calls in progress.", func() float64 { return float64(s.Stats().Rooms) }),
		gauge("participants", "Participants in calls.", func() float64 { return float64(s.Stats().Participants) }),
	}
	for _, c := range m.collectors {
		_ = reg.Register(c)
	}
	return m
}

func (m *metrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
