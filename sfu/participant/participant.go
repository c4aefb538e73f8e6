package participant

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"
	"google.golang.org/protobuf/proto"
)

var (
	// ErrLeft: the client sent a leave request.
	ErrLeft = errors.New("participant: left")
	// ErrClosed: the participant was closed while a request was handled.
	ErrClosed = errors.New("participant: closed")
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

// Batcher gathers the datagrams written between Hold and Release and sends
// them together on Release.
type Batcher interface {
	Hold()
	Release()
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

	// API creates the publisher connection (NewPublisherMediaEngine's
	// interceptors suffice) and, without SubscriberAPI, the subscriber or
	// single one too (then it needs NewMediaEngine's).
	API *webrtc.API
	// SubscriberAPI, when set, creates the subscriber connection, or in
	// single mode the one connection (one API per participant, carrying
	// its bandwidth estimator, see NewSubscriberAPI, made alsoReceives for
	// single mode); BWE returns that estimator.
	SubscriberAPI *webrtc.API
	BWE           func() Estimator
	// Direct is SubscriberAPI's direct write path (NewSubscriberAPI); with
	// Socket, the socket the SFU's ICE mux runs on, the subscriber
	// connection's RTP is encrypted and written there without pion's SRTP
	// session once connected over UDP on that socket; with RTCP (the
	// router the socket's claim runs), the subscriber's RTCP is read off
	// that socket instead of through pion's connection.
	Direct   *DirectOut
	Socket   Socket
	RTCP     *RTCPRouter
	Sink     Sink
	Listener Listener
	Logger   *slog.Logger
	Counters *Counters
	// Batch, when set, gathers the writes of one packet's fan-out to its
	// subscribers into one send (the SFU's UDP socket, internal/udpbatch).
	Batch Batcher

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
	part.pubAPI = p.API
	subAPI := p.API
	if p.SubscriberAPI != nil {
		subAPI = p.SubscriberAPI
	}
	if part.sub, err = subAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return nil, fmt.Errorf("subscriber connection: %w", err)
	}
	ordered := true
	var reliable, lossy *webrtc.DataChannel
	if reliable, err = part.sub.CreateDataChannel(ReliableLabel, &webrtc.DataChannelInit{Ordered: &ordered}); err == nil {
		unordered, zero := false, uint16(0)
		lossy, err = part.sub.CreateDataChannel(LossyLabel, &webrtc.DataChannelInit{Ordered: &unordered, MaxRetransmits: &zero})
	}
	if err != nil {
		_ = part.sub.Close()
		return nil, fmt.Errorf("data channels: %w", err)
	}
	part.outReliable.Store(reliable)
	part.outLossy.Store(lossy)
	// The client only reads these; drain what it might send.
	part.readData(reliable, nil)
	part.readData(lossy, nil)
	part.sub.OnICECandidate(func(c *webrtc.ICECandidate) { part.sendCandidate(c, livekit.SignalTarget_SUBSCRIBER) })
	part.sub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		part.log.Debug("subscriber connection", "state", s.String())
		part.onSubscriberState(s)
		if s == webrtc.PeerConnectionStateConnected {
			part.setActive()
			if !part.subConnected.Swap(true) {
				part.enqueue(part.flushNegotiation)
			}
		}
	})
	part.watchSelectedPair()
	part.workers.Add(1)
	go part.runOps()
	return part, nil
}

// publisher returns the publisher connection, creating it on the
// client's first offer: livekit-client negotiates it only to publish or
// send data, so a viewer of a lecture never does, and an idle connection
// still holds its interceptors' goroutines and tickers. Called on the
// signal goroutine; the connection is set under mu so that Close sees it.
func (p *Participant) publisher() (*webrtc.PeerConnection, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pub != nil {
		return p.pub, nil
	}
	if p.closed {
		return nil, ErrClosed
	}
	pc, err := p.pubAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("publisher connection: %w", err)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(c, livekit.SignalTarget_PUBLISHER) })
	pc.OnTrack(p.onTrack)
	pc.OnDataChannel(p.onDataChannel)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.log.Debug("publisher connection", "state", s.String())
		if s == webrtc.PeerConnectionStateConnected {
			p.setActive()
		}
	})
	p.pub = pc
	return pc, nil
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
	pub := p.pub // nil if never offered; no longer created once closed
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
	if p.params.Direct != nil {
		p.params.Direct.disarm()
	}
	if pub != nil {
		_ = pub.Close()
	}
	if !p.single {
		_ = p.sub.Close()
	}
	for _, t := range tracks {
		t.readers.Wait()
	}
	p.workers.Wait()
	return tracks
}

// onSubscriberState arms the direct write path once the subscriber
// connection is up and takes it back to pion's path when it ends.
func (p *Participant) onSubscriberState(s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		armDirect(p.params.Direct, p.params.Socket, p.params.RTCP, p.sub)
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		if p.params.Direct != nil {
			p.params.Direct.disarm()
		}
	}
}

// watchSelectedPair follows the subscriber connection's ICE candidate
// pair, so the direct write path goes where pion's would.
func (p *Participant) watchSelectedPair() {
	if p.params.Direct == nil {
		return
	}
	p.sub.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) {
		if p.sub.ConnectionState() == webrtc.PeerConnectionStateConnected {
			armDirect(p.params.Direct, p.params.Socket, p.params.RTCP, p.sub)
		}
	})
}

// codecs returns the codecs the SFU registered for a kind.
func (p Params) codecs(kind livekit.TrackType) []webrtc.RTPCodecParameters {
	if kind == livekit.TrackType_AUDIO {
		return AudioCodecs
	}
	return VideoCodecs
}
