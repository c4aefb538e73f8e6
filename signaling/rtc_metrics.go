package signaling

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type rtcMetrics struct {
	sessions   prometheus.Gauge
	refusals   *prometheus.CounterVec
	violations *prometheus.CounterVec
	liveGrants *prometheus.CounterVec
}

func newRTCMetrics(reg prometheus.Registerer) *rtcMetrics {
	m := &rtcMetrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "salon", Subsystem: "rtc", Name: "sessions",
			Help: "Signal connections with a participant in a call."}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "salon", Subsystem: "rtc", Name: "refused_total",
			Help: "Join attempts and validations refused, by HTTP status."}, []string{"status"}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "salon", Subsystem: "rtc", Name: "disconnects_total",
			Help: "Clients disconnected for breaking the protocol, by kind."}, []string{"kind"}),
		liveGrants: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "salon", Subsystem: "rtc", Name: "live_grants_total",
			Help: "Participants whose grant a change of their Matrix room changed live (changed) or who were removed from the call (removed)."}, []string{"outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sessions, m.refusals, m.violations, m.liveGrants} {
			_ = reg.Register(c)
		}
	}
	return m
}

func (m *rtcMetrics) refused(status int) { m.refusals.WithLabelValues(strconv.Itoa(status)).Inc() }
