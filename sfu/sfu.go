// Package sfu is the media plane: an embedded selective forwarding unit on
// pion/webrtc that forwards RTP without decoding, for calls driven by the
// LiveKit client protocol (spoken by package signaling). It owns the call
// registry and the ICE sockets; it knows nothing of Matrix.
//
// Subpackages: room (a call), participant (one member's peer connections
// and tracks), forward (per-subscriber forwarding decisions, pure).
package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/internal/udpbatch"
	"github.com/salonhq/salon/sfu/internal/pionlog"
	"github.com/salonhq/salon/sfu/participant"
	"github.com/salonhq/salon/sfu/room"
)

// ServerVersion is the LiveKit server version Salon reports. livekit-client
// gates features on it: it must be set, and at or below 1.13.6 VP9 and AV1
// are published as SVC in one stream, which the SFU forwards whole.
const ServerVersion = "1.9.0"

// ProtocolVersion is the LiveKit signal protocol version Salon speaks.
const ProtocolVersion = 16

// udpBufferBytes is the socket buffer asked for on the media socket.
const udpBufferBytes = 8 << 20

// The media socket is read up to udpReadBatch datagrams per recvmmsg, each
// of up to udpReadSize bytes (pion's ICE mux reads into 8 KiB too).
const (
	udpReadBatch = 16
	udpReadSize  = 8192
)

// Params are what New needs.
type Params struct {
	Config Config
	// Logger is narrowed here with component=sfu; nil discards.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// UDPConn, when set, is used instead of listening on
	// ListenHost:UDPPort (tests pass a socket on port 0). The SFU closes
	// it on Close.
	UDPConn net.PacketConn
	// TCPListener, when set, is used instead of listening on
	// ListenHost:TCPPort. The SFU closes it on Close.
	TCPListener net.Listener
}

// SFU is the registry of calls and the sockets their media flows through.
type SFU struct {
	cfg      Config
	log      *slog.Logger
	api      *webrtc.API
	se       webrtc.SettingEngine
	udpMux   ice.UDPMux
	batch    participant.Batcher // nil when the socket cannot batch
	socket   participant.Socket  // the UDP socket the ICE mux runs on
	rtcp     *participant.RTCPRouter
	tcpMux   ice.TCPMux
	counters *participant.Counters
	metrics  *metrics

	mu       sync.Mutex
	rooms    map[string]*room.Room
	sessions map[*Session]struct{}
	closed   bool
}

// New opens the media sockets and returns a running SFU.
func New(p Params) (*SFU, error) {
	cfg := p.Config.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "sfu")
	s := &SFU{
		cfg:      cfg,
		log:      log,
		counters: &participant.Counters{},
		rooms:    map[string]*room.Room{},
		sessions: map[*Session]struct{}{},
	}
	host, _ := netip.ParseAddr(cfg.ListenHost)

	udp := p.UDPConn
	if udp == nil {
		c, err := net.ListenPacket("udp", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.UDPPort)))
		if err != nil {
			return nil, fmt.Errorf("sfu.udp_port: %w", err)
		}
		udp = c
	}
	tcp := p.TCPListener
	if tcp == nil && cfg.TCPPort > 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.TCPPort)))
		if err != nil {
			_ = udp.Close()
			return nil, fmt.Errorf("sfu.tcp_port: %w", err)
		}
		tcp = l
	}

	// One socket carries every call's media: give it room to absorb bursts
	// while the reader is descheduled (the kernel caps this at
	// net.core.rmem_max / wmem_max; raise those on a busy server).
	if b, ok := udp.(interface {
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
	}); ok {
		_ = b.SetReadBuffer(udpBufferBytes)
		_ = b.SetWriteBuffer(udpBufferBytes)
	}

	// Fan-outs write their copies in one sendmmsg (see participant.Params.Batch).
	// Reads take several datagrams per recvmmsg, and the subscribers' RTCP
	// is handled as it is read, before pion's ICE mux (participant.RTCPRouter).
	if bc, ok := udpbatch.New(udp); ok {
		udp = bc
		c := bc.(*udpbatch.Conn)
		s.batch = c
		c.ReadBatches(udpReadBatch, udpReadSize)
		s.rtcp = participant.NewRTCPRouter()
		c.SetClaim(s.rtcp.Claim)
	}
	s.socket = udp

	lf := pionlog.Factory{Logger: log}
	se := webrtc.SettingEngine{LoggerFactory: lf}
	s.udpMux = webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), udp)
	se.SetICEUDPMux(s.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if tcp != nil {
		s.tcpMux = webrtc.NewICETCPMux(lf.NewLogger("tcpmux"), tcp, 16)
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	// Participants read data channels with small buffers of their own
	// (participant.readData), not pion's 64 KiB per open channel.
	se.DetachDataChannels()
	// The SFU only listens: no mDNS sockets, no outgoing (active) ICE-TCP.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.DisableActiveTCP(true)
	// A client's first connectivity check often reaches the SFU before its
	// trickled candidate does (the check takes one UDP hop, the candidate
	// the signalling WebSocket): its address is then a peer-reflexive
	// candidate, which pion's controlling agent waits a second to nominate
	// in case a better one comes. The SFU has one host candidate per
	// family and the client's address is the one its packets come from:
	// nominate at once (about one join in ten took a second longer).
	se.SetPrflxAcceptanceMinWait(0)
	// Host candidates on the listening address only (ICE-TCP gathers from
	// interfaces; the mux accepts only on its own address).
	listenIP := hostIP(udp.LocalAddr(), host)
	if listenIP.IsValid() && !listenIP.IsUnspecified() {
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && a.Unmap() == listenIP.Unmap()
		})
		if listenIP.IsLoopback() {
			se.SetIncludeLoopbackCandidate(true)
		}
	}
	if len(cfg.NAT1To1IPs) > 0 {
		se.SetNAT1To1IPs(cfg.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	// s.api creates publisher connections only: a participant's
	// subscriber (or single) connection comes from its own API.
	me, ir, err := participant.NewPublisherMediaEngine()
	if err != nil {
		s.closeMuxes()
		return nil, err
	}
	s.api = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
	s.se = se
	s.metrics = newMetrics(s, p.Registerer)
	log.Info("sfu listening", "udp", udp.LocalAddr().String(), "tcp", addrString(tcp))
	return s, nil
}

func hostIP(a net.Addr, fallback netip.Addr) netip.Addr {
	if ua, ok := a.(*net.UDPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ua.IP); ok {
			return ip.Unmap()
		}
	}
	return fallback
}

func addrString(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}

func (s *SFU) closeMuxes() {
	if s.udpMux != nil {
		_ = s.udpMux.Close()
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
	}
}

// PingTimeout is how long a client may stay silent on its signal
// connection, as told to clients in the join response.
func (s *SFU) PingTimeout() time.Duration { return s.cfg.PingTimeout }

// Close ends every call and closes the media sockets.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rooms := make([]*room.Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.rooms = map[string]*room.Room{}
	sessions := make([]*Session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.stopTimer()
	}
	for _, r := range rooms {
		r.Close()
	}
	s.closeMuxes()
	s.metrics.unregister()
	return nil
}

// Permission is what a participant may do in a call, from its token's
// video grant; UpdatePermissions changes it live.
type Permission struct {
	CanPublish        bool
	CanPublishSources []livekit.TrackSource // empty: every source
	CanSubscribe      bool
	CanPublishData    bool
	CanUpdateMetadata bool
	Hidden            bool
}

func (p Permission) proto() *livekit.ParticipantPermission {
	return &livekit.ParticipantPermission{
		CanPublish:        p.CanPublish,
		CanPublishSources: p.CanPublishSources,
		CanSubscribe:      p.CanSubscribe,
		CanPublishData:    p.CanPublishData,
		CanUpdateMetadata: p.CanUpdateMetadata,
		Hidden:            p.Hidden,
	}
}

// SignalSink is the signal connection of one session, implemented by
// package signaling. SendSignal queues and never blocks.
type SignalSink interface {
	SendSignal(*livekit.SignalResponse) bool
	CloseSignal(reason string)
}

// JoinRequest is a verified request to join a call.
type JoinRequest struct {
	Room     string
	Identity string
	// Subject is whom the participant acts for, as the token's issuer
	// named them (signaling puts the Matrix user ID here). The SFU only
	// keeps it with the session: clients never see or change it.
	Subject string
	// Admin is the token's roomAdmin grant (see Session.Admin).
	Admin bool
	// Scope is an opaque name of what the call belongs to, given by the
	// token's issuer (the signalling puts the Matrix room there), for
	// ScopeSessions.
	Scope         string
	Name          string
	Metadata      string
	Attributes    map[string]string
	Permission    Permission
	AutoSubscribe bool
	ClientInfo    *livekit.ClientInfo
	ICEServers    []*livekit.ICEServer
	Sink          SignalSink
	// SinglePeerConnection: the client's one connection carries publish
	// and subscribe (LiveKit's /rtc/v1 signalling).
	SinglePeerConnection bool
}

// CheckJoin reports whether identity could join roomName now, for
// /rtc/validate and before upgrading a WebSocket.
func (s *SFU) CheckJoin(roomName, identity string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	r := s.rooms[roomName]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	if err := r.CheckJoin(identity); err != nil && errors.Is(err, room.ErrFull) {
		return fmt.Errorf("%w: %v", ErrRoomFull, err)
	}
	return nil
}

// Join admits a participant, creating the call on first join. The join
// response is the first message sent to req.Sink. A previous session of
// the same identity in the call is disconnected.
func (s *SFU) Join(req JoinRequest) (*Session, error) {
	sid := participant.NewID("PA_")
	for attempt := 0; attempt < 3; attempt++ {
		r, err := s.room(req.Room)
		if err != nil {
			return nil, err
		}
		ss := &Session{sfu: s, room: r, sink: req.Sink, subject: req.Subject, scope: req.Scope}
		ss.admin.Store(req.Admin)
		subAPI, bwe, direct, err := participant.NewSubscriberAPI(s.se, s.cfg.BandwidthEstimation == "gcc", req.SinglePeerConnection)
		if err != nil {
			return nil, err
		}
		p, err := participant.New(participant.Params{
			SubscriberAPI:        subAPI,
			BWE:                  bwe,
			Direct:               direct,
			Socket:               s.socket,
			RTCP:                 s.rtcp,
			SID:                  sid,
			Identity:             req.Identity,
			Name:                 req.Name,
			Metadata:             req.Metadata,
			Attributes:           req.Attributes,
			Permission:           req.Permission.proto(),
			ClientInfo:           req.ClientInfo,
			API:                  s.api,
			Sink:                 req.Sink,
			Listener:             r,
			Logger:               s.log,
			Counters:             s.counters,
			Batch:                s.batch,
			AutoSubscribe:        req.AutoSubscribe,
			MaxTracks:            s.cfg.MaxTracksPerParticipant,
			MaxBitrate:           positive(s.cfg.MaxBitrate),
			MaxSubscriberBitrate: positive(s.cfg.MaxSubscriberBitrate),
			KeyframeInterval:     s.cfg.KeyframeInterval,
			SinglePeerConnection: req.SinglePeerConnection,
		})
		if err != nil {
			return nil, err
		}
		ss.p = p
		old, err := r.Join(p, func(info *livekit.Room, others []*livekit.ParticipantInfo) *livekit.SignalResponse {
			return s.joinResponse(req, p, info, others)
		})
		if errors.Is(err, room.ErrClosed) {
			p.Close()
			s.dropRoom(r)
			continue
		}
		if err != nil {
			p.Close()
			if errors.Is(err, room.ErrFull) {
				return nil, fmt.Errorf("%w: %v", ErrRoomFull, err)
			}
			return nil, err
		}
		s.track(ss)
		if old != nil {
			s.kick(r, old, livekit.DisconnectReason_DUPLICATE_IDENTITY)
		}
		return ss, nil
	}
	return nil, ErrClosed
}

func positive(v int) uint32 {
	if v <= 0 {
		return 0
	}
	return uint32(v)
}

func (s *SFU) joinResponse(req JoinRequest, p *participant.Participant, info *livekit.Room, others []*livekit.ParticipantInfo) *livekit.SignalResponse {
	self := p.ToProto()
	return &livekit.SignalResponse{Message: &livekit.SignalResponse_Join{Join: &livekit.JoinResponse{
		Room:              info,
		Participant:       self,
		OtherParticipants: others,
		ServerVersion:     ServerVersion,
		IceServers:        req.ICEServers,
		// The subscriber connection carries the data channels and is
		// offered by the SFU at once; livekit-client waits for it. A
		// single connection is the client's to offer.
		SubscriberPrimary: req.Permission.CanSubscribe && !req.SinglePeerConnection,
		// Negotiate the publisher connection at join, so the first
		// publication does not wait for ICE.
		FastPublish:  req.Permission.CanPublish,
		PingInterval: int32(s.cfg.PingInterval / time.Second),
		PingTimeout:  int32(s.cfg.PingTimeout / time.Second),
		ServerInfo: &livekit.ServerInfo{
			Edition:  livekit.ServerInfo_Standard,
			Version:  ServerVersion,
			Protocol: ProtocolVersion,
			NodeId:   "salon",
		},
		ClientConfiguration:  &livekit.ClientConfiguration{ResumeConnection: livekit.ClientConfigSetting_ENABLED},
		EnabledPublishCodecs: participant.AnnouncedCodecs(),
	}}}
}

func (s *SFU) room(name string) (*room.Room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if r := s.rooms[name]; r != nil {
		return r, nil
	}
	r := room.New(room.Params{
		Name:            name,
		Limits:          room.Limits{MaxParticipants: s.cfg.MaxParticipants, MaxPublishers: s.cfg.MaxPublishers},
		Logger:          s.log,
		Listener:        s,
		SpeakerInterval: s.cfg.SpeakerInterval,
	})
	s.rooms[name] = r
	s.log.Info("call opened", "room", name)
	return r, nil
}

// OnRoomEmpty drops a call once its last participant left.
func (s *SFU) OnRoomEmpty(r *room.Room) {
	s.dropRoom(r)
	s.log.Info("call closed", "room", r.Name())
}

func (s *SFU) dropRoom(r *room.Room) {
	s.mu.Lock()
	if s.rooms[r.Name()] == r {
		delete(s.rooms, r.Name())
	}
	s.mu.Unlock()
}

func (s *SFU) track(ss *Session) {
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
}

func (s *SFU) untrack(ss *Session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

// kick ends a participant's session with a leave request.
func (s *SFU) kick(r *room.Room, p *participant.Participant, reason livekit.DisconnectReason) {
	sink := p.SetSink(nil)
	if sink != nil {
		sink.SendSignal(&livekit.SignalResponse{Message: &livekit.SignalResponse_Leave{Leave: &livekit.LeaveRequest{
			Reason: reason, Action: livekit.LeaveRequest_DISCONNECT,
		}}})
		sink.CloseSignal(reason.String())
	}
	s.mu.Lock()
	for ss := range s.sessions {
		if ss.p == p {
			delete(s.sessions, ss)
			ss.mu.Lock()
			ss.closed = true
			ss.mu.Unlock()
		}
	}
	s.mu.Unlock()
	r.Leave(p)
}

// Resume reattaches a client whose signal connection dropped (the
// reconnect=1 query). The first message sent to sink is the reconnect
// response.
func (s *SFU) Resume(roomName, identity, participantSID string, sink SignalSink, iceServers []*livekit.ICEServer) (*Session, error) {
	s.mu.Lock()
	var found *Session
	for ss := range s.sessions {
		if ss.room.Name() == roomName && ss.p.Identity() == identity && ss.p.SID() == participantSID && !ss.isClosed() {
			found = ss
		}
	}
	s.mu.Unlock()
	if found == nil {
		return nil, ErrNoSession
	}
	found.stopTimer()
	found.mu.Lock()
	old := found.sink
	found.sink = sink
	found.mu.Unlock()
	found.p.SetSink(sink)
	if old != nil && old != sink {
		old.CloseSignal("resumed elsewhere")
	}
	sink.SendSignal(&livekit.SignalResponse{Message: &livekit.SignalResponse_Reconnect{Reconnect: &livekit.ReconnectResponse{
		IceServers:          iceServers,
		ClientConfiguration: &livekit.ClientConfiguration{ResumeConnection: livekit.ClientConfigSetting_ENABLED},
		ServerInfo:          &livekit.ServerInfo{Edition: livekit.ServerInfo_Standard, Version: ServerVersion, Protocol: ProtocolVersion, NodeId: "salon"},
	}}})
	// What changed while the client was away.
	for _, o := range found.room.Participants() {
		if o != found.p {
			sink.SendSignal(&livekit.SignalResponse{Message: &livekit.SignalResponse_Update{Update: &livekit.ParticipantUpdate{Participants: []*livekit.ParticipantInfo{o.ToProto()}}}})
		}
	}
	found.p.Resumed()
	return found, nil
}

// UpdatePermissions applies a grant change to a connected participant.
// It reports whether the participant was found.
func (s *SFU) UpdatePermissions(roomName, identity string, p Permission) bool {
	s.mu.Lock()
	r := s.rooms[roomName]
	s.mu.Unlock()
	if r == nil {
		return false
	}
	return r.UpdatePermission(identity, p.proto())
}

// Sessions lists the sessions of the participants of a call now,
// including those waiting for their client to resume; none when the call
// does not exist.
func (s *SFU) Sessions(roomName string) []*Session {
	return s.sessionsWhere(func(ss *Session) bool { return ss.room.Name() == roomName })
}

// ScopeSessions lists the sessions joined with JoinRequest.Scope scope, in
// whatever calls, including those waiting for their client to resume.
func (s *SFU) ScopeSessions(scope string) []*Session {
	if scope == "" {
		return nil
	}
	return s.sessionsWhere(func(ss *Session) bool { return ss.scope == scope })
}

func (s *SFU) sessionsWhere(match func(*Session) bool) []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Session
	for ss := range s.sessions {
		if match(ss) && !ss.isClosed() {
			out = append(out, ss)
		}
	}
	return out
}

// Stats are process-wide forwarding counters.
type Stats struct {
	Rooms, Participants                      int
	PacketsIn, BytesIn, PacketsOut, BytesOut uint64
	KeyframeRequests                         uint64
	// RTCPDirect counts subscribers' RTCP packets read off the media
	// socket without pion's connection (participant.RTCPRouter).
	RTCPDirect uint64
	// VideoLayers counts published video tracks by how many layers
	// (simulcast streams) are arriving: index 0 none, 1, 2 or 3.
	VideoLayers [4]int
}

// Stats returns the current counters.
func (s *SFU) Stats() Stats {
	s.mu.Lock()
	st := Stats{Rooms: len(s.rooms)}
	rooms := make([]*room.Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	now := time.Now()
	for _, r := range rooms {
		for _, p := range r.Participants() {
			st.Participants++
			for _, t := range p.PublishedTracks() {
				if t.Kind() != livekit.TrackType_VIDEO {
					continue
				}
				n := 0
				for _, l := range t.Layers(now) {
					if l.Active {
						n++
					}
				}
				st.VideoLayers[min(n, 3)]++
			}
		}
	}
	st.PacketsIn = s.counters.PacketsIn.Load()
	st.BytesIn = s.counters.BytesIn.Load()
	st.PacketsOut = s.counters.PacketsOut.Load()
	st.BytesOut = s.counters.BytesOut.Load()
	st.KeyframeRequests = s.counters.KeyframeRequest.Load()
	st.RTCPDirect = s.rtcp.Taken()
	return st
}

// Session is one participant's presence in a call, as its signal
// connection sees it.
type Session struct {
	sfu     *SFU
	room    *room.Room
	p       *participant.Participant
	subject string
	scope   string
	// admin is the grant's roomAdmin, kept for the signalling's refresh
	// tokens across resumes (the SFU gives it no powers of its own).
	admin atomic.Bool

	mu     sync.Mutex
	sink   SignalSink
	timer  *time.Timer
	closed bool
}

// ParticipantSID is the participant's server ID.
func (ss *Session) ParticipantSID() string { return ss.p.SID() }

// Room is the call's name.
func (ss *Session) Room() string { return ss.room.Name() }

// Identity is the participant's identity.
func (ss *Session) Identity() string { return ss.p.Identity() }

// Subject is JoinRequest.Subject.
func (ss *Session) Subject() string { return ss.subject }

// Admin is the session's roomAdmin grant, as last set by SetAdmin.
func (ss *Session) Admin() bool { return ss.admin.Load() }

// SetAdmin records a change of the roomAdmin grant.
func (ss *Session) SetAdmin(admin bool) { ss.admin.Store(admin) }

// SetPermission applies a grant change as UpdatePermissions does: the
// participant gets a ParticipantUpdate with its new permission, and
// tracks of sources it may no longer publish are unpublished. It reports
// false when the session has ended.
func (ss *Session) SetPermission(p Permission) bool {
	if ss.isClosed() {
		return false
	}
	return ss.room.UpdateParticipantPermission(ss.p, p.proto())
}

// Remove takes the participant out of the call now: its client gets a
// leave request (reason, action DISCONNECT: no reconnecting) and the
// signal connection is closed.
func (ss *Session) Remove(reason livekit.DisconnectReason) {
	if ss.isClosed() {
		return
	}
	ss.stopTimer()
	ss.sfu.kick(ss.room, ss.p, reason)
}

// HandleRequest acts on one signal request. An error ends the session:
// participant.ErrLeft for a leave, an ErrProtocol-wrapped one for a
// client that broke the protocol.
func (ss *Session) HandleRequest(req *livekit.SignalRequest) error {
	err := ss.p.HandleRequest(req)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, participant.ErrLeft):
		return ErrLeft
	case errors.Is(err, participant.ErrProtocol):
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return err
}

// Errors HandleRequest wraps.
var (
	ErrLeft     = errors.New("sfu: participant left")
	ErrProtocol = errors.New("sfu: protocol violation")
)

// Permission is the participant's current grant (changed live by
// UpdatePermissions).
func (ss *Session) Permission() Permission {
	pp := ss.p.Permission()
	return Permission{
		CanPublish:        pp.CanPublish,
		CanPublishSources: pp.CanPublishSources,
		CanSubscribe:      pp.CanSubscribe,
		CanPublishData:    pp.CanPublishData,
		CanUpdateMetadata: pp.CanUpdateMetadata,
		Hidden:            pp.Hidden,
	}
}

// Leave removes the participant from the call now.
func (ss *Session) Leave() {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.closed = true
	if ss.timer != nil {
		ss.timer.Stop()
	}
	ss.mu.Unlock()
	ss.sfu.untrack(ss)
	ss.p.SetSink(nil)
	ss.room.Leave(ss.p)
}

// SignalLost detaches sink (if it is still the session's) and keeps the
// participant for the resume window before it leaves.
func (ss *Session) SignalLost(sink SignalSink) {
	ss.mu.Lock()
	if ss.closed || ss.sink != sink {
		ss.mu.Unlock()
		return
	}
	ss.sink = nil
	ss.p.SetSink(nil)
	if ss.timer != nil {
		ss.timer.Stop()
	}
	ss.timer = time.AfterFunc(ss.sfu.cfg.ResumeWindow, ss.resumeExpired)
	ss.mu.Unlock()
}

func (ss *Session) resumeExpired() {
	ss.mu.Lock()
	detached := ss.sink == nil
	ss.mu.Unlock()
	if detached {
		ss.Leave()
	}
}

func (ss *Session) stopTimer() {
	ss.mu.Lock()
	if ss.timer != nil {
		ss.timer.Stop()
		ss.timer = nil
	}
	ss.mu.Unlock()
}

func (ss *Session) isClosed() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.closed
}

// SignalConnected reports whether the session has its signal connection
// (false while it waits for a resume, and once it ended).
func (ss *Session) SignalConnected() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return !ss.closed && ss.sink != nil
}
