package participant

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
	"google.golang.org/protobuf/proto"
)

const audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// Data channel labels livekit-client uses on both connections.
const (
	ReliableLabel = "_reliable"
	LossyLabel    = "_lossy"
)

// maxDataMessage caps one data packet a participant sends. livekit-client
// splits larger payloads into data streams.
const maxDataMessage = 64 << 10

// A participant may send dataRate bytes/s of data packets on average, in
// bursts of dataBurst; beyond that packets are dropped rather than
// multiplied to everyone in the call.
const (
	dataRate  = 2 << 20
	dataBurst = 4 << 20
)

var (
	// ErrLeft: the client sent a leave request.
	ErrLeft = errors.New("participant: left")
	// ErrProtocol: the client sent a request that cannot be honoured
	// (an unusable SDP, a flood of refused publications). The session
	// ends with the error's text as the reason.
	ErrProtocol = errors.New("protocol violation")
)

// Sink carries signal responses to the client. Implementations queue and
// never block; they drop the connection themselves when the client does
// not keep up.
type Sink interface {
	SendSignal(*livekit.SignalResponse) bool
	CloseSignal(reason string)
}

// Listener is how a participant reports to its room. Calls are made
// without the participant's lock held.
type Listener interface {
	// CanPublish is asked before a track is accepted (room-wide limits).
	CanPublish(p *Participant) error
	OnTrackPublished(p *Participant, t *MediaTrack)
	OnTrackUnpublished(p *Participant, t *MediaTrack)
	// OnParticipantChanged: mute, metadata or permission changed.
	OnParticipantChanged(p *Participant)
	OnSubscriptionRequest(p *Participant, trackSIDs []string, subscribe bool)
	OnDataPacket(p *Participant, kind livekit.DataPacket_Kind, dp *livekit.DataPacket)
}

// Params configures a participant.
type Params struct {
	SID        string
	Identity   string
	Name       string
	Metadata   string
	Attributes map[string]string
	Permission *livekit.ParticipantPermission
	ClientInfo *livekit.ClientInfo

	API *webrtc.API
	// SubscriberAPI, when set, creates the subscriber connection (one API
	// per participant, carrying its bandwidth estimator, see
	// NewSubscriberAPI); BWE returns that estimator.
	SubscriberAPI *webrtc.API
	BWE           func() cc.BandwidthEstimator
	Sink          Sink
	Listener      Listener
	Logger        *slog.Logger
	Counters      *Counters

	AutoSubscribe        bool
	MaxTracks            int    // -1: no limit
	MaxBitrate           uint32 // per published video track, 0: none
	MaxSubscriberBitrate uint32
	KeyframeInterval     time.Duration

	// SinglePeerConnection: one connection, offered by the client, carries
	// both what the participant publishes and what it receives (LiveKit's
	// /rtc/v1 signalling). Subscribed tracks go out on the receive-only
	// media sections the client offers; when none is free, or to carry a
	// change, the client is asked for a new offer (MediaSectionsRequirement).
	SinglePeerConnection bool
}

// Participant is one member of a call with its two peer connections (or,
// with Params.SinglePeerConnection, one).
type Participant struct {
	params Params
	log    *slog.Logger

	pub *webrtc.PeerConnection
	// sub is the subscriber connection; in single mode it is pub.
	sub    *webrtc.PeerConnection
	single bool
	pubAPI *webrtc.API

	// outReliable and outLossy carry data packets to the client: the
	// subscriber connection's channels, or in single mode the ones the
	// client opened.
	outReliable atomic.Pointer[webrtc.DataChannel]
	outLossy    atomic.Pointer[webrtc.DataChannel]

	mu          sync.Mutex
	sink        Sink
	name        string
	metadata    string
	attributes  map[string]string
	permission  *livekit.ParticipantPermission
	version     uint32
	state       livekit.ParticipantInfo_State
	joinedAt    time.Time
	pending     map[string]*livekit.TrackInfo // by cid
	published   map[string]*MediaTrack        // by sid
	publishedBy map[string]*MediaTrack        // by cid
	subscribed  map[string]*DownTrack         // by track sid
	refusedAdds int
	closed      bool
	dataTokens  float64
	dataLast    time.Time
	dataDropped uint64

	pubRemoteSet  bool
	pubCandidates []webrtc.ICECandidateInit

	// subscriber negotiation, touched only on the ops goroutine
	subConnected     atomic.Bool
	subOfferID       uint32
	negotiating      bool
	pendingNegotiate bool
	pendingRestart   bool
	subRemoteSet     bool
	subCandidates    []webrtc.ICECandidateInit
	// single mode: an offer was asked of the client and has not come;
	// media sections asked for and not yet offered.
	offerAsked    bool
	sectionsAsked [2]int // audio, video

	opsMu     sync.Mutex
	ops       []func()
	opsSignal chan struct{}
	opsDone   chan struct{}
	workers   sync.WaitGroup
}

// New creates a participant and its peer connections. Call Start after
// the join response has been sent.
func New(p Params) (*Participant, error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Counters == nil {
		p.Counters = &Counters{}
	}
	if p.Permission == nil {
		p.Permission = &livekit.ParticipantPermission{CanSubscribe: true, CanPublish: true, CanPublishData: true}
	}
	part := &Participant{
		params:      p,
		log:         p.Logger.With("participant", p.SID, "identity", p.Identity),
		sink:        p.Sink,
		name:        p.Name,
		metadata:    p.Metadata,
		attributes:  p.Attributes,
		permission:  proto.Clone(p.Permission).(*livekit.ParticipantPermission),
		version:     1,
		state:       livekit.ParticipantInfo_JOINING,
		joinedAt:    time.Now(),
		pending:     map[string]*livekit.TrackInfo{},
		published:   map[string]*MediaTrack{},
		publishedBy: map[string]*MediaTrack{},
		subscribed:  map[string]*DownTrack{},
		opsSignal:   make(chan struct{}, 1),
		opsDone:     make(chan struct{}),
	}
	if p.SinglePeerConnection {
		if err := part.newSingleConnection(); err != nil {
			return nil, err
		}
		part.workers.Add(1)
		go part.runOps()
		return part, nil
	}
	var err error
	if part.pub, err = p.API.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, fmt.Errorf("publisher connection: %w", err)
	}
	part.pubAPI = p.API
	subAPI := p.API
	if p.SubscriberAPI != nil {
		subAPI = p.SubscriberAPI
	}
	if part.sub, err = subAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		_ = part.pub.Close()
		return nil, fmt.Errorf("subscriber connection: %w", err)
	}
	ordered := true
	var reliable, lossy *webrtc.DataChannel
	if reliable, err = part.sub.CreateDataChannel(ReliableLabel, &webrtc.DataChannelInit{Ordered: &ordered}); err == nil {
		unordered, zero := false, uint16(0)
		lossy, err = part.sub.CreateDataChannel(LossyLabel, &webrtc.DataChannelInit{Ordered: &unordered, MaxRetransmits: &zero})
	}
	if err != nil {
		_ = part.pub.Close()
		_ = part.sub.Close()
		return nil, fmt.Errorf("data channels: %w", err)
	}
	part.outReliable.Store(reliable)
	part.outLossy.Store(lossy)
	part.pub.OnICECandidate(func(c *webrtc.ICECandidate) { part.sendCandidate(c, livekit.SignalTarget_PUBLISHER) })
	part.sub.OnICECandidate(func(c *webrtc.ICECandidate) { part.sendCandidate(c, livekit.SignalTarget_SUBSCRIBER) })
	part.pub.OnTrack(part.onTrack)
	part.pub.OnDataChannel(part.onDataChannel)
	part.pub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		part.log.Debug("publisher connection", "state", s.String())
		if s == webrtc.PeerConnectionStateConnected {
			part.setActive()
		}
	})
	part.sub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		part.log.Debug("subscriber connection", "state", s.String())
		if s == webrtc.PeerConnectionStateConnected {
			part.setActive()
			if !part.subConnected.Swap(true) {
				part.enqueue(part.flushNegotiation)
			}
		}
	})
	part.workers.Add(1)
	go part.runOps()
	return part, nil
}

// SID is the participant's server ID ("PA_…").
func (p *Participant) SID() string { return p.params.SID }

// Identity is the token's subject.
func (p *Participant) Identity() string { return p.params.Identity }

// AutoSubscribe reports whether the client asked to be subscribed to
// every track.
func (p *Participant) AutoSubscribe() bool { return p.params.AutoSubscribe }

// Permission returns a copy of the participant's permissions.
func (p *Participant) Permission() *livekit.ParticipantPermission {
	p.mu.Lock()
	defer p.mu.Unlock()
	return proto.Clone(p.permission).(*livekit.ParticipantPermission)
}

// CanSubscribe reports the subscribe permission.
func (p *Participant) CanSubscribe() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.permission.CanSubscribe
}

// IsPublisher reports whether the participant publishes a track.
func (p *Participant) IsPublisher() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.published) > 0 || len(p.pending) > 0
}

// ToProto describes the participant for join responses and updates.
func (p *Participant) ToProto() *livekit.ParticipantInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.toProtoLocked()
}

func (p *Participant) toProtoLocked() *livekit.ParticipantInfo {
	info := &livekit.ParticipantInfo{
		Sid:         p.params.SID,
		Identity:    p.params.Identity,
		Name:        p.name,
		Metadata:    p.metadata,
		Attributes:  p.attributes,
		State:       p.state,
		JoinedAt:    p.joinedAt.Unix(),
		JoinedAtMs:  p.joinedAt.UnixMilli(),
		Version:     p.version,
		Permission:  proto.Clone(p.permission).(*livekit.ParticipantPermission),
		IsPublisher: len(p.published) > 0,
		Kind:        livekit.ParticipantInfo_STANDARD,
	}
	if ci := p.params.ClientInfo; ci != nil {
		info.ClientProtocol = ci.Protocol
	}
	sids := make([]string, 0, len(p.published))
	for sid := range p.published {
		sids = append(sids, sid)
	}
	slices.Sort(sids)
	for _, sid := range sids {
		info.Tracks = append(info.Tracks, p.published[sid].Info())
	}
	return info
}

func (p *Participant) bumpLocked() { p.version++ }

func (p *Participant) setActive() {
	p.mu.Lock()
	if p.state == livekit.ParticipantInfo_ACTIVE || p.closed {
		p.mu.Unlock()
		return
	}
	p.state = livekit.ParticipantInfo_ACTIVE
	p.bumpLocked()
	p.mu.Unlock()
	p.params.Listener.OnParticipantChanged(p)
}

// Send queues a signal response for the client.
func (p *Participant) Send(msg *livekit.SignalResponse) bool {
	p.mu.Lock()
	s := p.sink
	p.mu.Unlock()
	if s == nil {
		return false
	}
	return s.SendSignal(msg)
}

// SetSink replaces the signal connection (a resume) and returns the old
// one. nil detaches it (the connection dropped).
func (p *Participant) SetSink(s Sink) Sink {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.sink
	p.sink = s
	return old
}

// Start sends the first subscriber offer, which carries the data channels;
// livekit-client waits for the subscriber connection when it is primary.
func (p *Participant) Start() {
	if p.single {
		return // the client offers
	}
	p.enqueue(func() { p.negotiateSubscriber(false) })
}

// Resumed is called after a resume. If the subscriber connection did not
// survive (a network change), restart ICE on it; livekit-client restarts
// the publisher side itself. A signal-only drop leaves media alone:
// restarting ICE on a working connection only interrupts it.
func (p *Participant) Resumed() {
	if p.single {
		return // the client restarts ICE with its next offer
	}
	p.enqueue(func() {
		if p.sub.ConnectionState() == webrtc.PeerConnectionStateConnected {
			p.flushNegotiation()
			return
		}
		p.negotiateSubscriber(true)
	})
}

// HandleRequest acts on one request from the client. An error wrapping
// ErrProtocol or ErrLeft ends the session.
func (p *Participant) HandleRequest(req *livekit.SignalRequest) error {
	switch m := req.Message.(type) {
	case *livekit.SignalRequest_Offer:
		if p.single {
			return p.handleSingleOffer(m.Offer)
		}
		return p.handleOffer(m.Offer)
	case *livekit.SignalRequest_Answer:
		if p.single {
			return nil // the SFU never offers on the single connection
		}
		answer := m.Answer
		p.enqueue(func() { p.handleSubscriberAnswer(answer) })
	case *livekit.SignalRequest_Trickle:
		return p.handleTrickle(m.Trickle)
	case *livekit.SignalRequest_AddTrack:
		return p.handleAddTrack(m.AddTrack)
	case *livekit.SignalRequest_Mute:
		p.handleMute(m.Mute)
	case *livekit.SignalRequest_Subscription:
		sids := slices.Clone(m.Subscription.TrackSids)
		for _, pt := range m.Subscription.ParticipantTracks {
			sids = append(sids, pt.TrackSids...)
		}
		p.params.Listener.OnSubscriptionRequest(p, sids, m.Subscription.Subscribe)
	case *livekit.SignalRequest_TrackSetting:
		p.handleTrackSettings(m.TrackSetting)
	case *livekit.SignalRequest_Leave:
		return ErrLeft
	case *livekit.SignalRequest_UpdateMetadata:
		p.handleUpdateMetadata(m.UpdateMetadata)
	default:
		// Ping is answered by the signal connection; sync state, layer
		// updates, subscription permissions and simulations are accepted
		// and ignored.
	}
	return nil
}

// answerOffer answers the publisher connection's remote offer (set by the
// caller): it caps video bitrate in the answer, sets it as the local
// description, and adds the ICE candidates that arrived before the offer.
func (p *Participant) answerOffer() (webrtc.SessionDescription, error) {
	answer, err := p.pub.CreateAnswer(nil)
	if err != nil {
		return answer, fmt.Errorf("%w: cannot answer offer: %v", ErrProtocol, err)
	}
	if p.params.MaxBitrate > 0 {
		answer.SDP = capVideoBitrate(answer.SDP, p.params.MaxBitrate)
	}
	if err := p.pub.SetLocalDescription(answer); err != nil {
		return answer, fmt.Errorf("%w: cannot answer offer: %v", ErrProtocol, err)
	}
	p.mu.Lock()
	p.pubRemoteSet = true
	queued := p.pubCandidates
	p.pubCandidates = nil
	p.mu.Unlock()
	for _, c := range queued {
		_ = p.pub.AddICECandidate(c)
	}
	return answer, nil
}

func (p *Participant) handleOffer(sd *livekit.SessionDescription) error {
	if sd == nil || sd.Type != "offer" {
		return fmt.Errorf("%w: publisher offer of type %q", ErrProtocol, sd.GetType())
	}
	if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sd.Sdp}); err != nil {
		return fmt.Errorf("%w: unusable offer: %v", ErrProtocol, err)
	}
	answer, err := p.answerOffer()
	if err != nil {
		return err
	}
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Answer{Answer: &livekit.SessionDescription{
		Type: "answer", Sdp: answer.SDP, Id: sd.Id,
	}}})
	return nil
}

// capVideoBitrate adds b=AS (kbit/s) and b=TIAS (bit/s) to every video
// section of an answer: browsers cap their encoder to it.
func capVideoBitrate(sdp string, bps uint32) string {
	lines := strings.Split(sdp, "\r\n")
	out := make([]string, 0, len(lines)+8)
	inVideo := false
	for _, l := range lines {
		if strings.HasPrefix(l, "m=") {
			inVideo = strings.HasPrefix(l, "m=video")
		}
		if inVideo && strings.HasPrefix(l, "b=") {
			continue
		}
		out = append(out, l)
		if inVideo && strings.HasPrefix(l, "c=") {
			out = append(out, fmt.Sprintf("b=AS:%d", bps/1000), fmt.Sprintf("b=TIAS:%d", bps))
		}
	}
	return strings.Join(out, "\r\n")
}

func (p *Participant) handleTrickle(t *livekit.TrickleRequest) error {
	if t == nil || t.CandidateInit == "" {
		return nil
	}
	var c webrtc.ICECandidateInit
	if err := json.Unmarshal([]byte(t.CandidateInit), &c); err != nil {
		return fmt.Errorf("%w: malformed ICE candidate", ErrProtocol)
	}
	if c.Candidate == "" {
		return nil // end of candidates
	}
	if t.Target == livekit.SignalTarget_SUBSCRIBER && !p.single {
		p.enqueue(func() {
			if !p.subRemoteSet {
				p.subCandidates = append(p.subCandidates, c)
				return
			}
			if err := p.sub.AddICECandidate(c); err != nil {
				p.log.Debug("subscriber candidate refused", "err", err)
			}
		})
		return nil
	}
	p.mu.Lock()
	if !p.pubRemoteSet {
		if len(p.pubCandidates) < 64 {
			p.pubCandidates = append(p.pubCandidates, c)
		}
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	if err := p.pub.AddICECandidate(c); err != nil {
		p.log.Debug("publisher candidate refused", "err", err)
	}
	return nil
}

func (p *Participant) sendCandidate(c *webrtc.ICECandidate, target livekit.SignalTarget) {
	if c == nil {
		return
	}
	b, err := json.Marshal(c.ToJSON())
	if err != nil {
		return
	}
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Trickle{Trickle: &livekit.TrickleRequest{
		CandidateInit: string(b), Target: target,
	}}})
}

func (p *Participant) refuseAddTrack(req *livekit.AddTrackRequest, reason livekit.RequestResponse_Reason, msg string) error {
	p.mu.Lock()
	p.refusedAdds++
	refused := p.refusedAdds
	limit := p.params.MaxTracks
	p.mu.Unlock()
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
		Reason: reason, Message: msg, Request: &livekit.RequestResponse_AddTrack{AddTrack: req},
	}}})
	// A client that keeps publishing after being told no is broken or
	// hostile; end it before it costs more.
	if limit < 16 {
		limit = 16
	}
	if refused > 4*limit {
		return fmt.Errorf("%w: too many refused track publications", ErrProtocol)
	}
	return nil
}

func (p *Participant) handleAddTrack(req *livekit.AddTrackRequest) error {
	if req.Cid == "" {
		return p.refuseAddTrack(req, livekit.RequestResponse_INVALID_REQUEST, "add track without cid")
	}
	if req.Type != livekit.TrackType_AUDIO && req.Type != livekit.TrackType_VIDEO {
		return p.refuseAddTrack(req, livekit.RequestResponse_UNSUPPORTED_TYPE, "only audio and video tracks are published over RTP")
	}
	p.mu.Lock()
	perm := p.permission
	allowed := perm.CanPublish && (len(perm.CanPublishSources) == 0 || slices.Contains(perm.CanPublishSources, req.Source))
	if existing, ok := p.pending[req.Cid]; ok {
		info := proto.Clone(existing).(*livekit.TrackInfo)
		p.mu.Unlock()
		p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackPublished{TrackPublished: &livekit.TrackPublishedResponse{Cid: req.Cid, Track: info}}})
		return nil
	}
	count := len(p.pending) + len(p.published)
	p.mu.Unlock()
	if !allowed {
		return p.refuseAddTrack(req, livekit.RequestResponse_NOT_ALLOWED, "not allowed to publish "+req.Source.String())
	}
	if p.params.MaxTracks >= 0 && count >= p.params.MaxTracks {
		return p.refuseAddTrack(req, livekit.RequestResponse_LIMIT_EXCEEDED, fmt.Sprintf("at most %d tracks per participant", p.params.MaxTracks))
	}
	if err := p.params.Listener.CanPublish(p); err != nil {
		return p.refuseAddTrack(req, livekit.RequestResponse_LIMIT_EXCEEDED, err.Error())
	}
	info := &livekit.TrackInfo{
		Sid:               NewID("TR_"),
		Type:              req.Type,
		Name:              req.Name,
		Muted:             req.Muted,
		Width:             req.Width,
		Height:            req.Height,
		Source:            req.Source,
		Layers:            req.Layers,
		Simulcast:         len(req.Layers) > 1,
		DisableDtx:        req.DisableDtx,
		DisableRed:        req.DisableRed,
		Stereo:            req.Stereo,
		Encryption:        req.Encryption,
		Stream:            req.Stream,
		AudioFeatures:     req.AudioFeatures,
		BackupCodecPolicy: req.BackupCodecPolicy,
	}
	for _, sc := range req.SimulcastCodecs {
		if sc.Codec == "" {
			continue
		}
		info.Codecs = append(info.Codecs, &livekit.SimulcastCodecInfo{MimeType: mimeFor(req.Type, sc.Codec), Cid: sc.Cid, Layers: sc.Layers, VideoLayerMode: sc.VideoLayerMode})
	}
	p.log.Debug("add track", "cid", req.Cid, "type", req.Type.String(), "source", req.Source.String(), "width", req.Width, "height", req.Height, "layers", len(req.Layers))
	for _, l := range req.Layers {
		p.log.Debug("layer", "quality", l.Quality.String(), "width", l.Width, "height", l.Height, "bitrate", l.Bitrate, "rid", l.Rid)
	}
	p.mu.Lock()
	p.pending[req.Cid] = info
	out := proto.Clone(info).(*livekit.TrackInfo)
	p.mu.Unlock()
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackPublished{TrackPublished: &livekit.TrackPublishedResponse{Cid: req.Cid, Track: out}}})
	return nil
}

func mimeFor(t livekit.TrackType, codec string) string {
	if strings.Contains(codec, "/") {
		return codec
	}
	kind := "video/"
	if t == livekit.TrackType_AUDIO {
		kind = "audio/"
	}
	switch strings.ToLower(codec) {
	case "vp8":
		return kind + "VP8"
	case "vp9":
		return kind + "VP9"
	case "h264":
		return kind + "H264"
	case "av1":
		return kind + "AV1"
	case "opus":
		return kind + "opus"
	}
	return kind + codec
}

// onTrack binds an incoming RTP stream to the track its AddTrackRequest
// announced: by the MediaStreamTrack ID (the cid), else the oldest pending
// track of the same kind (browsers that rewrite IDs).
func (p *Participant) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	kind := livekit.TrackType_VIDEO
	if remote.Kind() == webrtc.RTPCodecTypeAudio {
		kind = livekit.TrackType_AUDIO
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if t, ok := p.publishedBy[remote.ID()]; ok {
		p.mu.Unlock()
		t.addLayer(remote, receiver)
		return
	}
	cid := remote.ID()
	info, ok := p.pending[cid]
	if !ok {
		for c, i := range p.pending {
			for _, sc := range i.Codecs {
				if sc.Cid == remote.ID() {
					cid, info, ok = c, i, true
				}
			}
		}
	}
	if !ok {
		var oldest string
		for c, i := range p.pending {
			if i.Type == kind && (oldest == "" || c < oldest) {
				oldest, info = c, i
			}
		}
		cid, ok = oldest, oldest != ""
	}
	if !ok {
		p.mu.Unlock()
		p.log.Warn("media for a track never announced; ignored", "kind", kind.String(), "id", remote.ID())
		return
	}
	delete(p.pending, cid)
	codec := remote.Codec()
	info.MimeType = codec.MimeType
	if tr := receiver.RTPTransceiver(); tr != nil {
		info.Mid = tr.Mid()
	}
	if len(info.Codecs) == 0 {
		info.Codecs = []*livekit.SimulcastCodecInfo{{MimeType: codec.MimeType, Cid: cid, Layers: info.Layers}}
	}
	info.Codecs[0].Mid = info.Mid
	t := newMediaTrack(p, info, codec)
	t.cid = cid
	p.published[info.Sid] = t
	p.publishedBy[cid] = t
	if remote.ID() != cid {
		p.publishedBy[remote.ID()] = t
	}
	p.bumpLocked()
	p.mu.Unlock()
	t.addLayer(remote, receiver)
	p.log.Info("track published", "track", info.Sid, "mime", codec.MimeType, "layers", t.nlayers)
	p.params.Listener.OnTrackPublished(p, t)
}

func (p *Participant) handleMute(m *livekit.MuteTrackRequest) {
	p.mu.Lock()
	t, ok := p.published[m.Sid]
	if !ok {
		for _, info := range p.pending {
			if info.Sid == m.Sid {
				info.Muted = m.Muted
			}
		}
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if !t.setMuted(m.Muted) {
		return
	}
	p.mu.Lock()
	p.bumpLocked()
	p.mu.Unlock()
	p.params.Listener.OnParticipantChanged(p)
}

func (p *Participant) handleTrackSettings(s *livekit.UpdateTrackSettings) {
	p.log.Debug("track settings", "tracks", s.TrackSids, "disabled", s.Disabled, "width", s.Width, "height", s.Height, "quality", s.Quality.String())
	for _, sid := range s.TrackSids {
		p.mu.Lock()
		d := p.subscribed[sid]
		p.mu.Unlock()
		if d != nil {
			d.UpdateSettings(s)
		}
	}
}

func (p *Participant) handleUpdateMetadata(m *livekit.UpdateParticipantMetadata) {
	p.mu.Lock()
	if !p.permission.CanUpdateMetadata {
		p.mu.Unlock()
		p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
			RequestId: m.RequestId, Reason: livekit.RequestResponse_NOT_ALLOWED, Message: "may not update metadata",
			Request: &livekit.RequestResponse_UpdateMetadata{UpdateMetadata: m},
		}}})
		return
	}
	if m.Name != "" {
		p.name = m.Name
	}
	if m.Metadata != "" {
		p.metadata = m.Metadata
	}
	if len(m.Attributes) > 0 {
		attrs := make(map[string]string, len(p.attributes)+len(m.Attributes))
		for k, v := range p.attributes {
			attrs[k] = v
		}
		for k, v := range m.Attributes {
			if v == "" {
				delete(attrs, k)
			} else {
				attrs[k] = v
			}
		}
		p.attributes = attrs
	}
	p.bumpLocked()
	p.mu.Unlock()
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
		RequestId: m.RequestId, Reason: livekit.RequestResponse_OK,
	}}})
	p.params.Listener.OnParticipantChanged(p)
}

// SetPermission applies a grant change while connected. Revoking publish
// unpublishes the participant's tracks; revoking subscribe drops its
// subscriptions (the room does that).
func (p *Participant) SetPermission(perm *livekit.ParticipantPermission) (unpublished []*MediaTrack) {
	p.mu.Lock()
	p.permission = proto.Clone(perm).(*livekit.ParticipantPermission)
	revoked := func(src livekit.TrackSource) bool {
		return !perm.CanPublish || (len(perm.CanPublishSources) > 0 && !slices.Contains(perm.CanPublishSources, src))
	}
	for sid, t := range p.published {
		if revoked(t.Info().Source) {
			unpublished = append(unpublished, t)
			delete(p.published, sid)
			delete(p.publishedBy, t.cid)
		}
	}
	// Tracks announced (the client has their TrackPublished) whose media
	// has not arrived yet go too, or they would be published on arrival.
	var announced []string
	for cid, info := range p.pending {
		if revoked(info.Source) {
			announced = append(announced, info.Sid)
			delete(p.pending, cid)
		}
	}
	p.bumpLocked()
	p.mu.Unlock()
	for _, sid := range announced {
		p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackUnpublished{TrackUnpublished: &livekit.TrackUnpublishedResponse{TrackSid: sid}}})
	}
	for _, t := range unpublished {
		for _, d := range t.close() {
			d.sub.RemoveSubscription(d)
		}
		p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackUnpublished{TrackUnpublished: &livekit.TrackUnpublishedResponse{TrackSid: t.sid}}})
		p.params.Listener.OnTrackUnpublished(p, t)
	}
	return unpublished
}

// PublishedTracks returns the participant's published tracks.
func (p *Participant) PublishedTracks() []*MediaTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*MediaTrack, 0, len(p.published))
	for _, t := range p.published {
		out = append(out, t)
	}
	return out
}

// PublishedTrack finds a published track by SID.
func (p *Participant) PublishedTrack(sid string) *MediaTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published[sid]
}

// Subscription returns the down track of a subscribed track, or nil.
func (p *Participant) Subscription(trackSID string) *DownTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.subscribed[trackSID]
}

// Subscriptions returns the participant's down tracks.
func (p *Participant) Subscriptions() []*DownTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*DownTrack, 0, len(p.subscribed))
	for _, d := range p.subscribed {
		out = append(out, d)
	}
	return out
}

// Subscribe adds t to the subscriber connection and renegotiates.
func (p *Participant) Subscribe(t *MediaTrack) {
	p.mu.Lock()
	if p.closed || t.owner == p || p.subscribed[t.sid] != nil || !p.permission.CanSubscribe {
		p.mu.Unlock()
		return
	}
	d := newDownTrack(t, p)
	p.subscribed[t.sid] = d
	p.mu.Unlock()
	p.enqueue(func() {
		if p.isClosed() {
			return
		}
		// AddTrack reuses the media section of a removed track, so the
		// subscriber SDP does not grow with every publication in a long
		// call.
		sender, err := p.sub.AddTrack(d)
		var tr *webrtc.RTPTransceiver
		if err == nil {
			for _, x := range p.sub.GetTransceivers() {
				if x.Sender() == sender {
					tr = x
				}
			}
		}
		if err != nil || tr == nil {
			p.log.Warn("cannot add down track", "track", t.sid, "err", err)
			p.mu.Lock()
			delete(p.subscribed, t.sid)
			p.mu.Unlock()
			return
		}
		d.transceiver, d.sender = tr, sender
		p.preferCodec(tr, t)
		d.rtcpDone = make(chan struct{})
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			d.readRTCP()
		}()
		if !t.addDownTrack(d) {
			p.removeDownTrackOp(d)
			return
		}
		p.renegotiate()
	})
}

// preferCodec limits the offered codecs to the published one (and Opus
// beside RED, which the down track can unwrap).
func (p *Participant) preferCodec(tr *webrtc.RTPTransceiver, t *MediaTrack) {
	var prefs []webrtc.RTPCodecParameters
	for _, c := range p.params.codecs(t.kind) {
		if strings.EqualFold(c.MimeType, t.mime) && (c.SDPFmtpLine == t.capab.SDPFmtpLine || !strings.EqualFold(t.mime, webrtc.MimeTypeH264)) {
			prefs = append(prefs, c)
		}
	}
	if strings.EqualFold(t.mime, "audio/red") {
		for _, c := range p.params.codecs(t.kind) {
			if strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) {
				prefs = append(prefs, c)
			}
		}
	}
	if len(prefs) > 0 {
		if err := tr.SetCodecPreferences(prefs); err != nil {
			p.log.Debug("codec preferences refused", "err", err)
		}
	}
}

// Unsubscribe removes a subscribed track.
func (p *Participant) Unsubscribe(trackSID string) {
	p.mu.Lock()
	d := p.subscribed[trackSID]
	// Forget it now, so that a subscribe right behind finds no stale entry.
	delete(p.subscribed, trackSID)
	p.mu.Unlock()
	if d != nil {
		d.track.removeDownTrack(d)
		p.RemoveSubscription(d)
	}
}

// RemoveSubscription drops d (its track was unpublished or unsubscribed).
func (p *Participant) RemoveSubscription(d *DownTrack) {
	p.enqueue(func() { p.removeDownTrackOp(d) })
}

func (p *Participant) removeDownTrackOp(d *DownTrack) {
	p.mu.Lock()
	if p.subscribed[d.track.sid] == d {
		delete(p.subscribed, d.track.sid)
	}
	closed := p.closed
	p.mu.Unlock()
	d.bound.Store(false)
	if closed || d.sender == nil {
		return
	}
	if err := p.sub.RemoveTrack(d.sender); err != nil {
		p.log.Debug("remove down track", "err", err)
	}
	p.renegotiate()
}

// negotiateSubscriber sends a subscriber offer, or marks one pending while
// an earlier offer awaits its answer. Runs on the ops goroutine.
func (p *Participant) negotiateSubscriber(iceRestart bool) {
	if p.isClosed() {
		return
	}
	// Renegotiating before the first connection is up races the client's
	// ICE start (pion clients restart ICE on it): hold changes until then.
	if p.negotiating || (p.subOfferID > 0 && !iceRestart && !p.subConnected.Load()) {
		p.pendingNegotiate = true
		p.pendingRestart = p.pendingRestart || iceRestart
		return
	}
	offer, err := p.sub.CreateOffer(&webrtc.OfferOptions{ICERestart: iceRestart})
	if err == nil {
		err = p.sub.SetLocalDescription(offer)
	}
	if err != nil {
		if !p.isClosed() {
			p.log.Warn("subscriber offer", "err", err)
		}
		return
	}
	p.subOfferID++
	mids := map[string]string{}
	for _, tr := range p.sub.GetTransceivers() {
		if s := tr.Sender(); s != nil && s.Track() != nil && tr.Mid() != "" {
			mids[tr.Mid()] = s.Track().ID()
		}
	}
	p.negotiating = true
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Offer{Offer: &livekit.SessionDescription{
		Type: "offer", Sdp: offer.SDP, Id: p.subOfferID, MidToTrackId: mids,
	}}})
}

// flushNegotiation sends the offer held back while the subscriber
// connection was coming up.
func (p *Participant) flushNegotiation() {
	if p.pendingNegotiate && !p.negotiating {
		restart := p.pendingRestart
		p.pendingNegotiate, p.pendingRestart = false, false
		p.negotiateSubscriber(restart)
	}
}

func (p *Participant) handleSubscriberAnswer(sd *livekit.SessionDescription) {
	if sd == nil || sd.Type != "answer" || !p.negotiating {
		return
	}
	if sd.Id != 0 && sd.Id != p.subOfferID {
		return // answer to a superseded offer
	}
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sd.Sdp}); err != nil {
		p.log.Warn("subscriber answer refused", "err", err)
		p.mu.Lock()
		s := p.sink
		p.mu.Unlock()
		if s != nil {
			s.CloseSignal("unusable subscriber answer")
		}
		return
	}
	p.negotiating = false
	p.subRemoteSet = true
	for _, c := range p.subCandidates {
		_ = p.sub.AddICECandidate(c)
	}
	p.subCandidates = nil
	p.flushNegotiation()
}

func (p *Participant) onDataChannel(dc *webrtc.DataChannel) {
	var kind livekit.DataPacket_Kind
	switch dc.Label() {
	case ReliableLabel:
		kind = livekit.DataPacket_RELIABLE
	case LossyLabel:
		kind = livekit.DataPacket_LOSSY
	default:
		return
	}
	if p.single {
		// The client's channels carry data both ways.
		if kind == livekit.DataPacket_LOSSY {
			p.outLossy.Store(dc)
		} else {
			p.outReliable.Store(dc)
		}
	}
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if len(msg.Data) > maxDataMessage {
			return
		}
		p.mu.Lock()
		allowed := p.permission.CanPublishData && p.takeDataTokensLocked(len(msg.Data))
		p.mu.Unlock()
		if !allowed {
			return
		}
		dp := &livekit.DataPacket{}
		if err := proto.Unmarshal(msg.Data, dp); err != nil {
			p.log.Debug("malformed data packet dropped", "err", err)
			return
		}
		// The server, not the sender, says who sent it.
		dp.ParticipantIdentity = p.params.Identity
		dp.ParticipantSid = p.params.SID
		if u := dp.GetUser(); u != nil {
			u.ParticipantIdentity = p.params.Identity
			u.ParticipantSid = p.params.SID
		}
		dp.Kind = kind
		p.params.Listener.OnDataPacket(p, kind, dp)
	})
}

// takeDataTokensLocked charges n bytes to the data rate limit.
func (p *Participant) takeDataTokensLocked(n int) bool {
	now := time.Now()
	if p.dataLast.IsZero() {
		p.dataTokens = dataBurst
	} else {
		p.dataTokens = min(dataBurst, p.dataTokens+now.Sub(p.dataLast).Seconds()*dataRate)
	}
	p.dataLast = now
	if p.dataTokens < float64(n) {
		p.dataDropped++
		if p.dataDropped == 1 || p.dataDropped%1000 == 0 {
			p.log.Warn("data packets over the rate limit dropped", "dropped", p.dataDropped)
		}
		return false
	}
	p.dataTokens -= float64(n)
	return true
}

// SendData sends an encoded DataPacket over the subscriber connection's
// channel of that kind. Lossy packets are dropped when the channel is
// backed up.
func (p *Participant) SendData(kind livekit.DataPacket_Kind, data []byte) {
	dc := p.outReliable.Load()
	if kind == livekit.DataPacket_LOSSY {
		dc = p.outLossy.Load()
		if dc == nil || dc.BufferedAmount() > 1<<20 {
			return
		}
	} else if dc == nil || dc.BufferedAmount() > 16<<20 {
		return
	}
	if dc.ReadyState() != webrtc.DataChannelStateOpen {
		return
	}
	_ = dc.Send(data)
}

func (p *Participant) writePublisherRTCP(pkt rtcp.Packet) {
	if err := p.pub.WriteRTCP([]rtcp.Packet{pkt}); err != nil {
		p.log.Debug("rtcp to publisher", "err", err)
	}
}

func (p *Participant) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *Participant) enqueue(op func()) {
	p.opsMu.Lock()
	p.ops = append(p.ops, op)
	p.opsMu.Unlock()
	select {
	case p.opsSignal <- struct{}{}:
	default:
	}
}

// runOps serialises everything done to the subscriber connection.
func (p *Participant) runOps() {
	defer p.workers.Done()
	for {
		select {
		case <-p.opsDone:
			return
		case <-p.opsSignal:
		}
		for {
			p.opsMu.Lock()
			if len(p.ops) == 0 {
				p.opsMu.Unlock()
				break
			}
			op := p.ops[0]
			p.ops[0] = nil
			p.ops = p.ops[1:]
			p.opsMu.Unlock()
			op()
		}
	}
}

// Close tears the participant down: both connections, its published
// tracks (subscribers are told to drop them) and its goroutines. It
// returns the tracks it published so the room can announce their end.
// Safe to call more than once; later calls return nil.
func (p *Participant) Close() []*MediaTrack {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.state = livekit.ParticipantInfo_DISCONNECTED
	p.bumpLocked()
	tracks := make([]*MediaTrack, 0, len(p.published))
	for _, t := range p.published {
		tracks = append(tracks, t)
	}
	subs := make([]*DownTrack, 0, len(p.subscribed))
	for _, d := range p.subscribed {
		subs = append(subs, d)
	}
	p.mu.Unlock()

	for _, d := range subs {
		d.track.removeDownTrack(d)
		d.bound.Store(false)
	}
	for _, t := range tracks {
		for _, d := range t.close() {
			d.sub.RemoveSubscription(d)
		}
	}
	close(p.opsDone)
	_ = p.pub.Close()
	if !p.single {
		_ = p.sub.Close()
	}
	for _, t := range tracks {
		t.readers.Wait()
	}
	p.workers.Wait()
	return tracks
}

// codecs returns the codecs the SFU registered for a kind.
func (p Params) codecs(kind livekit.TrackType) []webrtc.RTPCodecParameters {
	if kind == livekit.TrackType_AUDIO {
		return AudioCodecs
	}
	return VideoCodecs
}

// Bandwidth adaptation: how much headroom to keep under the estimate,
// and how long to wait before trying a better layer again (doubling after
// each attempt that congested the link, up to bweRetryMax).
const (
	bweRetry    = 10 * time.Second
	bweRetryMax = 80 * time.Second
)

// AdaptToBandwidth fits the simulcast layers this participant receives
// into its connection's bandwidth estimate: when the estimator sees
// congestion and what the chosen layers need exceeds its estimate, the
// most expensive video steps down one layer; after a while without congestion, one capped video is allowed a
// layer back (which, with no probing, is how a better estimate is found).
// Called periodically by the room.
func (p *Participant) AdaptToBandwidth(now time.Time) {
	if p.params.BWE == nil {
		return
	}
	est := p.params.BWE()
	if est == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	downs := make([]*DownTrack, 0, len(p.subscribed))
	for _, d := range p.subscribed {
		if d.track.simulcst {
			downs = append(downs, d)
		}
	}
	p.mu.Unlock()
	if len(downs) == 0 {
		return
	}
	// The estimate without probing only climbs towards what is sent, so it
	// is acted on only when it reports congestion (delay overuse, a
	// decrease, or loss), not merely for being low.
	congested := false
	if st := est.GetStats(); st != nil {
		loss, _ := st["averageLoss"].(float64)
		congested = st["usage"] == "overuse" || st["state"] == "decrease" || loss > 0.1
	}
	target := uint64(est.GetTargetBitrate())
	var need uint64
	var top *DownTrack
	var topRate uint64
	for _, d := range downs {
		r := d.targetBitrate()
		need += r
		if r > topRate {
			top, topRate = d, r
		}
	}
	if congested && need > target && top != nil {
		top.capBandwidth(now)
		return
	}
	if congested {
		return
	}
	for _, d := range downs {
		if d.uncapBandwidth(now) {
			return // one step at a time
		}
	}
}
