package signaling

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// refusal is why a token request got no token.
type refusal uint8

const (
	refusalUnknown        refusal = iota
	refusalBadRequest             // malformed JSON or missing, invalid or oversized fields
	refusalOtherServer            // the OpenID token names another server
	refusalBadOpenIDToken         // forged, unknown or expired OpenID token
	refusalWrongUser              // member.claimed_user_id is not the token's user
	refusalDelegation             // delayed-leave delegation asked for; not offered
	refusalNotJoined              // not joined to the room now
	refusalInternal               // the homeserver, the keys or the external SFU failed
	refusalCount
)

var refusalNames = [refusalCount]string{
	"unknown", "bad_request", "other_server", "bad_openid_token",
	"wrong_user", "delegation", "not_joined", "internal",
}

func (r refusal) String() string {
	if r >= refusalCount {
		return refusalNames[refusalUnknown]
	}
	return refusalNames[r]
}

// endpoint is which token request was answered.
type endpoint uint8

const (
	endpointGetToken endpoint = iota // POST /get_token
	endpointSFUGet                   // POST /sfu/get (legacy)
	endpointCount
)

var endpointNames = [endpointCount]string{"get_token", "sfu_get"}

func (e endpoint) String() string { return endpointNames[e] }

// jwtCounters are the service's counters; atomics, so the hot path does
// no label lookups.
type jwtCounters struct {
	issued   [endpointCount]atomic.Uint64
	refusals [refusalCount]atomic.Uint64
}

var (
	descTokensIssued = prometheus.NewDesc("salon_jwt_tokens_issued_total",
		"LiveKit access tokens issued by the MatrixRTC JWT service.", []string{"endpoint"}, nil)
	descRefusals = prometheus.NewDesc("salon_jwt_refusals_total",
		"Token requests the MatrixRTC JWT service refused, by reason.", []string{"reason"}, nil)
)

type jwtCollector struct{ c *jwtCounters }

func (jwtCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTokensIssued
	ch <- descRefusals
}

func (m jwtCollector) Collect(ch chan<- prometheus.Metric) {
	for e := range endpointCount {
		ch <- prometheus.MustNewConstMetric(descTokensIssued, prometheus.CounterValue, float64(m.c.issued[e].Load()), e.String())
	}
	for r := refusalUnknown + 1; r < refusalCount; r++ {
		ch <- prometheus.MustNewConstMetric(descRefusals, prometheus.CounterValue, float64(m.c.refusals[r].Load()), r.String())
	}
}

func registerJWTCollector(reg prometheus.Registerer, c *jwtCounters) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(jwtCollector{c})
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
		return errors.New("signaling: JWT service metrics already registered (one JWTService per registry)")
	}
	return err
}
