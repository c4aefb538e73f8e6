package participant

import (
	"fmt"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"

	"github.com/salonhq/salon/sfu/bwe"
)

var videoFeedback = []webrtc.RTCPFeedback{
	{Type: webrtc.TypeRTCPFBGoogREMB}, {Type: webrtc.TypeRTCPFBTransportCC},
	{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"}, {Type: webrtc.TypeRTCPFBNACK}, {Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
}

// AudioCodecs are the audio codecs the SFU receives and forwards: Opus
// (with in-band FEC and DTX left to the publisher) and RED (RFC 2198)
// carrying Opus, which Chrome and livekit-client use by default.
var AudioCodecs = []webrtc.RTPCodecParameters{
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}}, PayloadType: 111},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/red", ClockRate: 48000, Channels: 2, SDPFmtpLine: "111/111"}, PayloadType: 63},
}

// VideoCodecs are the video codecs the SFU forwards without decoding.
var VideoCodecs = []webrtc.RTPCodecParameters{
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 96},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFeedback}, PayloadType: 98},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=2", RTCPFeedback: videoFeedback}, PayloadType: 100},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFeedback}, PayloadType: 102},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: videoFeedback}, PayloadType: 104},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", RTCPFeedback: videoFeedback}, PayloadType: 106},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", RTCPFeedback: videoFeedback}, PayloadType: 108},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 45},
}

// NewSubscriberAPI returns an API for one participant's subscriber
// connection: the SFU's codecs and the interceptors of a connection that
// sends media (and, with alsoReceives, of one that receives it too: the
// single connection of /rtc/v1), the direct write path (DirectOut, armed
// by the participant once connected) and, with estimate, a send-side
// bandwidth estimator (sfu/bwe: Google Congestion Control over the
// subscriber's TWCC feedback). The estimator of the connection the API
// creates is returned by the second result once it exists (nil without
// estimate). No pacer: packets leave when forwarded.
func NewSubscriberAPI(se webrtc.SettingEngine, estimate, alsoReceives bool) (*webrtc.API, func() Estimator, *DirectOut, error) {
	var get func() Estimator
	out := &DirectOut{}
	dirs := sends
	if alsoReceives {
		dirs |= receives
	}
	me, ir, err := newEngine(dirs, out, func(ir *interceptor.Registry) error {
		if !estimate {
			return nil
		}
		f, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
			e := bwe.New(bwe.Config{Initial: bweInitial, Min: bweMin, Max: bweMax})
			out.est.Store(e)
			return e, nil
		})
		if err != nil {
			return err
		}
		ir.Add(f)
		get = func() Estimator {
			if e := out.est.Load(); e != nil {
				return e
			}
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), get, out, nil
}

// Estimator is what a participant asks of its subscriber connection's
// bandwidth estimator (sfu/bwe, which pion's cc interceptor feeds).
type Estimator interface {
	// GetTargetBitrate is the estimate, bit/s.
	GetTargetBitrate() int
	// Congested reports whether the path shows congestion now.
	Congested() bool
}

// Bandwidth estimator bounds (bit/s). It starts high enough for the best
// layer of a camera, so subscribers start on the layer they asked for and
// step down only when congestion is seen.
const (
	bweInitial = 3_000_000
	bweMin     = 100_000
	bweMax     = 100_000_000
)

// NewMediaEngine registers the codecs, header extensions and interceptors
// of a peer connection that sends and receives media: NACK generation
// towards publishers (NACKs from subscribers are answered by the down
// tracks from one packet cache per published stream, not by an
// interceptor that would copy every packet once per subscriber), RTCP
// sender and receiver reports, and transport-wide congestion control
// (TWCC) feedback in both directions.
func NewMediaEngine() (*webrtc.MediaEngine, *interceptor.Registry, error) {
	return newEngine(receives|sends, nil, nil)
}

// NewPublisherMediaEngine is NewMediaEngine for connections that only
// receive media (the publisher connection of /rtc): NACK generation,
// receiver reports and TWCC feedback, without the sending side's
// interceptors.
func NewPublisherMediaEngine() (*webrtc.MediaEngine, *interceptor.Registry, error) {
	return newEngine(receives, nil, nil)
}

// directions says which way a connection carries media, and so which
// interceptors it needs. Each pion interceptor runs a goroutine and a
// ticker per connection (NACK generation and TWCC feedback every 100 ms,
// reports every second) whether or not media flows its way: a call of
// 100 with two connections each had 800 goroutines waking 4,400 times a
// second when every connection had all four.
type directions uint8

const (
	receives directions = 1 << iota // NACKs, receiver reports, TWCC feedback
	sends                           // sender reports, TWCC sequence numbers
)

// newEngine builds the media engine and the interceptors of dirs; last,
// when set, is the innermost interceptor (it sees each outgoing packet
// after every other); extra, when set, adds interceptors that must see
// packets before the TWCC header extension is stamped (the bandwidth
// estimator).
func newEngine(dirs directions, last interceptor.Factory, extra func(*interceptor.Registry) error) (*webrtc.MediaEngine, *interceptor.Registry, error) {
	me := &webrtc.MediaEngine{}
	for _, c := range AudioCodecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, nil, fmt.Errorf("register %s: %w", c.MimeType, err)
		}
	}
	for _, c := range VideoCodecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, nil, fmt.Errorf("register %s: %w", c.MimeType, err)
		}
	}
	exts := []struct {
		uri  string
		kind webrtc.RTPCodecType
		dir  []webrtc.RTPTransceiverDirection
	}{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio, nil},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo, nil},
		{audioLevelURI, webrtc.RTPCodecTypeAudio, []webrtc.RTPTransceiverDirection{webrtc.RTPTransceiverDirectionRecvonly}},
		{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo, []webrtc.RTPTransceiverDirection{webrtc.RTPTransceiverDirectionRecvonly}},
		{sdp.SDESRepairRTPStreamIDURI, webrtc.RTPCodecTypeVideo, []webrtc.RTPTransceiverDirection{webrtc.RTPTransceiverDirectionRecvonly}},
		{sdp.TransportCCURI, webrtc.RTPCodecTypeAudio, nil},
		{sdp.TransportCCURI, webrtc.RTPCodecTypeVideo, nil},
	}
	for _, e := range exts {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind, e.dir...); err != nil {
			return nil, nil, fmt.Errorf("register %s: %w", e.uri, err)
		}
	}

	ir := &interceptor.Registry{}
	if last != nil {
		ir.Add(last)
	}
	// Registration order is the chain's order; pion's constructors fail
	// only on bad options. The first error is returned.
	var err error
	add := func(when directions) func(interceptor.Factory, error) {
		return func(f interceptor.Factory, ferr error) {
			switch {
			case err != nil || dirs&when == 0:
			case ferr != nil:
				err = ferr
			default:
				ir.Add(f)
			}
		}
	}
	add(receives)(nack.NewGeneratorInterceptor())
	add(receives)(report.NewReceiverInterceptor())
	add(sends)(report.NewSenderInterceptor())
	if err == nil && extra != nil {
		err = extra(ir)
	}
	add(receives)(twcc.NewSenderInterceptor())
	add(sends)(twcc.NewHeaderExtensionInterceptor())
	if err != nil {
		return nil, nil, err
	}
	if d, ok := last.(*DirectOut); ok {
		ir.Add(directHeads{d})
	}
	return me, ir, nil
}
