package federation

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the federation figures on /metrics.
type metrics struct {
	queueDepth *prometheus.GaugeVec     // destination
	txnSeconds *prometheus.HistogramVec // result
	txns       *prometheus.CounterVec   // direction, result
	refused    *prometheus.CounterVec   // reason
	keyFetches *prometheus.CounterVec   // result
	requests   *prometheus.CounterVec   // route, method, status
	duration   *prometheus.HistogramVec // route
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "salon_federation_queue_depth",
			Help: "EDUs and PDUs waiting in the outbound queue, per destination server.",
		}, []string{"destination"}),
		txnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "salon_federation_transaction_seconds",
			Help:    "Time to send one outbound transaction and get the answer.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"result"}),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "salon_federation_transactions_total",
			Help: "Transactions sent (direction out) and received (in), by result.",
		}, []string{"direction", "result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "salon_federation_requests_refused_total",
			Help: "Inbound federation requests and items refused, by reason.",
		}, []string{"reason"}),
		keyFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "salon_federation_key_fetches_total",
			Help: "Fetches of other servers' signing keys, by result.",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "salon_federation_requests_total",
			Help: "Inbound Server-Server API requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "salon_federation_request_duration_seconds",
			Help:    "Time to answer inbound Server-Server API requests, by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.queueDepth, m.txnSeconds, m.txns, m.refused, m.keyFetches, m.requests, m.duration)
	}
	return m
}
