// Package lktest is a LiveKit-protocol client on pion: a signal WebSocket
// and the two peer connections (publisher, subscriber), with synthetic
// Opus and simulcast VP8 sources. Salon's end-to-end tests and `salon
// loadtest` drive the SFU through it exactly as livekit-client would.
//
// It shares no code with the SFU's forwarding path on purpose: it checks
// the SFU from the outside.
package lktest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
	"google.golang.org/protobuf/proto"
)

// Options tune a client.
type Options struct {
	// AutoSubscribe asks the SFU to subscribe to every track (default in
	// livekit-client).
	AutoSubscribe bool
	// KeepMessages keeps every signal response for WaitFor (tests). A
	// load generator leaves it off.
	KeepMessages bool
	// Reconnect resumes the session of ParticipantSID.
	Reconnect      bool
	ParticipantSID string
	// Dialer overrides the WebSocket dialer.
	Dialer *websocket.Dialer
	// TCPOnly makes both peer connections use ICE-TCP (active candidates
	// towards the SFU's TCP port), as on a network that blocks UDP.
	TCPOnly bool
	// SinglePeerConnection joins through /rtc/v1 as livekit-client 2.x
	// does first: one peer connection for publish and subscribe, the
	// settings and the connection's first offer in the join_request, and
	// receive-only sections added when the SFU asks for them.
	SinglePeerConnection bool
	// GzipJoinRequest compresses the /rtc/v1 join request, as browsers
	// with CompressionStream do.
	GzipJoinRequest bool
	// NoTrickle sends none of the client's ICE candidates over the
	// signal connection: the SFU learns the client's address only from its
	// connectivity checks (a peer-reflexive candidate), as when a check
	// overtakes the trickled candidate.
	NoTrickle bool
	// OnRTP, when set, sees every RTP packet of a subscribed track as it
	// arrives (the whole packet, header included), on that track's reader
	// goroutine; pkt is reused after the call returns. Tests that look at
	// what the SFU forwards (web/internal/sfuprobe) record through it.
	OnRTP func(t *RemoteTrack, pkt []byte)
}

// initialSections is how many receive-only audio and video sections a
// single-connection client offers at join (livekit-client offers 3 and 3).
const initialSections = 2

// Client is one participant.
type Client struct {
	opts  Options
	ws    *websocket.Conn
	socks []net.PacketConn

	Join      *livekit.JoinResponse
	Reconnect *livekit.ReconnectResponse

	pub *webrtc.PeerConnection
	sub *webrtc.PeerConnection

	writeMu sync.Mutex

	mu         sync.Mutex
	msgs       []*livekit.SignalResponse
	notify     chan struct{}
	pubRemote  bool
	subRemote  bool
	pubQueue   []webrtc.ICECandidateInit
	subQueue   []webrtc.ICECandidateInit
	published  map[string]chan *livekit.TrackInfo // cid → reply
	answers    chan *livekit.SessionDescription
	negotiate  sync.Mutex
	offerID    uint32
	tracks     map[string]*RemoteTrack // by track SID
	data       []*livekit.DataPacket
	midToTrack map[string]string
	closeCode  int
	closeText  string
	offers     int
	readerDone chan struct{}
	closed     atomic.Bool

	pubReliable *webrtc.DataChannel
	pubLossy    *webrtc.DataChannel

	joinOffer       *livekit.SessionDescription
	earlyTrickle    []*livekit.TrickleRequest
	sectionRequests int

	workers sync.WaitGroup
	stop    chan struct{}
	// simulcast RTCP readers are ended before the connection closes:
	// pion's RTPSender.Stop races with ReadSimulcast.
	rtcpReaders sync.WaitGroup
	rtcpStops   []func()
}

// RemoteTrack counts what arrives on one subscribed track.
type RemoteTrack struct {
	SID      string
	StreamID string
	Kind     webrtc.RTPCodecType
	Mime     string
	Packets  atomic.Uint64
	Bytes    atomic.Uint64
	// LastLayer is the layer marker of the last synthetic VP8 packet
	// (see VideoSource), -1 before one arrives.
	LastLayer atomic.Int32
	// LayerPackets counts packets per layer marker.
	LayerPackets [3]atomic.Uint64
	Gaps         atomic.Uint64 // sequence-number gaps seen
	Missing      atomic.Uint64 // packets missing in those gaps
	lastSeq      uint16
	seen         bool
}

// Connect opens the signal connection to baseURL (ws://host/prefix) with
// token and sets up both peer connections; it returns once the join (or
// reconnect) response arrived.
func Connect(ctx context.Context, baseURL, token string, opts Options) (*Client, error) {
	c := &Client{
		opts:       opts,
		notify:     make(chan struct{}),
		published:  map[string]chan *livekit.TrackInfo{},
		answers:    make(chan *livekit.SessionDescription, 4),
		tracks:     map[string]*RemoteTrack{},
		readerDone: make(chan struct{}),
		stop:       make(chan struct{}),
	}
	if opts.SinglePeerConnection {
		return c.connectSingle(ctx, baseURL, token)
	}
	if err := c.dial(ctx, baseURL, token, opts); err != nil {
		return nil, err
	}
	if err := c.setupPCs(); err != nil {
		_ = c.ws.Close()
		for _, s := range c.socks {
			_ = s.Close()
		}
		return nil, err
	}
	c.start()
	return c, nil
}

func (c *Client) start() {
	go c.readLoop()
	if iv := c.Join.GetPingInterval(); iv > 0 {
		c.workers.Add(1)
		go c.pinger(time.Duration(iv) * time.Second)
	}
}

// connectSingle joins through /rtc/v1: the connection and its first offer
// are made before dialling and travel in the join request; Connect returns
// once the SFU answered it.
func (c *Client) connectSingle(ctx context.Context, baseURL, token string) (*Client, error) {
	fail := func(err error) (*Client, error) {
		if c.ws != nil {
			_ = c.ws.Close()
		}
		if c.pub != nil {
			_ = c.pub.Close()
		}
		for _, s := range c.socks {
			_ = s.Close()
		}
		return nil, err
	}
	var err error
	if c.pub, err = c.newPC(); err != nil {
		return fail(err)
	}
	c.sub = c.pub
	if err := c.setupDataChannels(); err != nil {
		return fail(err)
	}
	c.pub.OnICECandidate(func(ic *webrtc.ICECandidate) { c.trickle(ic, livekit.SignalTarget_PUBLISHER) })
	c.pub.OnTrack(c.onTrack)
	for _, dc := range []*webrtc.DataChannel{c.pubReliable, c.pubLossy} {
		dc.OnMessage(c.onData)
	}
	if err := c.addReceiveSections(initialSections, initialSections); err != nil {
		return fail(err)
	}
	// The join's offer is answered before any other negotiation.
	c.negotiate.Lock()
	defer c.negotiate.Unlock()
	offer, err := c.pub.CreateOffer(nil)
	if err == nil {
		err = c.pub.SetLocalDescription(offer)
	}
	if err != nil {
		return fail(err)
	}
	c.offerID++
	c.joinOffer = &livekit.SessionDescription{Type: "offer", Sdp: offer.SDP, Id: c.offerID}
	if err := c.dial(ctx, baseURL, token, c.opts); err != nil {
		return fail(err)
	}
	c.start()
	if err := c.awaitAnswer(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// addReceiveSections adds receive-only transceivers, which the SFU sends
// subscribed tracks on.
func (c *Client) addReceiveSections(audios, videos int) error {
	for kind, n := range map[webrtc.RTPCodecType]int{webrtc.RTPCodecTypeAudio: audios, webrtc.RTPCodecTypeVideo: videos} {
		for i := 0; i < n; i++ {
			if _, err := c.pub.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return err
			}
		}
	}
	return nil
}

// addSendTrack adds a track to publish: on a send-only transceiver of its
// own with one connection (as livekit-client does, leaving the receive
// sections alone), with AddTrack on the dual publisher connection.
func (c *Client) addSendTrack(t webrtc.TrackLocal) (*webrtc.RTPSender, error) {
	if !c.opts.SinglePeerConnection {
		return c.pub.AddTrack(t)
	}
	tr, err := c.pub.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, err
	}
	return tr.Sender(), nil
}

// onMediaSections adds what the SFU asked for and offers again, as
// livekit-client does on a MediaSectionsRequirement.
func (c *Client) onMediaSections(m *livekit.MediaSectionsRequirement) {
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		c.negotiate.Lock()
		err := c.addReceiveSections(int(m.NumAudios), int(m.NumVideos))
		c.negotiate.Unlock()
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := c.Negotiate(ctx, false); err == nil {
			c.mu.Lock()
			c.sectionRequests++
			c.mu.Unlock()
		}
	}()
}

// pinger sends ping_req every interval, as livekit-client does; the SFU
// drops a connection silent for longer than its ping timeout.
func (c *Client) pinger(interval time.Duration) {
	defer c.workers.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			_ = c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: time.Now().UnixMilli()}}})
		}
	}
}

func (c *Client) dial(ctx context.Context, baseURL, token string, opts Options) error {
	u, err := url.Parse(baseURL)
	if err != nil {
		return err
	}
	u.Path = u.Path + "/rtc"
	q := u.Query()
	q.Set("access_token", token)
	if opts.SinglePeerConnection {
		u.Path += "/v1"
		jr, err := c.joinRequest(opts)
		if err != nil {
			return err
		}
		q.Set("join_request", jr)
	}
	q.Set("auto_subscribe", map[bool]string{true: "1", false: "0"}[opts.AutoSubscribe])
	q.Set("sdk", "go")
	q.Set("protocol", "16")
	q.Set("version", "salon-lktest")
	if opts.Reconnect {
		q.Set("reconnect", "1")
		q.Set("sid", opts.ParticipantSID)
	}
	if opts.SinglePeerConnection {
		// Everything else travels in the join request.
		q = url.Values{"access_token": {token}, "join_request": {q.Get("join_request")}}
	}
	u.RawQuery = q.Encode()
	d := opts.Dialer
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	ws, resp, err := d.DialContext(ctx, u.String(), nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return err
	}
	c.writeMu.Lock()
	c.ws = ws
	early := c.earlyTrickle
	c.earlyTrickle = nil
	c.writeMu.Unlock()
	for _, t := range early {
		_ = c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Trickle{Trickle: t}})
	}
	first, err := c.readOne(ctx)
	if err != nil {
		_ = ws.Close()
		return err
	}
	switch m := first.Message.(type) {
	case *livekit.SignalResponse_Join:
		c.Join = m.Join
	case *livekit.SignalResponse_Reconnect:
		c.Reconnect = m.Reconnect
	case *livekit.SignalResponse_Leave:
		_ = ws.Close()
		return fmt.Errorf("lktest: refused with leave request: %s", m.Leave.Reason)
	default:
		_ = ws.Close()
		return fmt.Errorf("lktest: first message is %T, want join", first.Message)
	}
	return nil
}

// joinRequest encodes the /rtc/v1 join_request parameter: a
// WrappedJoinRequest, base64url with padding as livekit-client sends it.
func (c *Client) joinRequest(opts Options) (string, error) {
	jr := &livekit.JoinRequest{
		ClientInfo:         &livekit.ClientInfo{Sdk: livekit.ClientInfo_GO, Protocol: 16, Version: "salon-lktest"},
		ConnectionSettings: &livekit.ConnectionSettings{AutoSubscribe: opts.AutoSubscribe},
		Reconnect:          opts.Reconnect,
		ParticipantSid:     opts.ParticipantSID,
	}
	if !opts.Reconnect {
		jr.PublisherOffer = c.joinOffer
	}
	b, err := proto.Marshal(jr)
	if err != nil {
		return "", err
	}
	w := &livekit.WrappedJoinRequest{JoinRequest: b}
	if opts.GzipJoinRequest {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		if err := zw.Close(); err != nil {
			return "", err
		}
		w.JoinRequest, w.Compression = buf.Bytes(), livekit.WrappedJoinRequest_GZIP
	}
	wb, err := proto.Marshal(w)
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(wb), nil
}

// Dial returns the HTTP status and body /rtc answers for a token that is
// refused (tests of forged, expired or wrong-room tokens).
func Dial(ctx context.Context, baseURL, token string) (status int, body string, err error) {
	u := baseURL + "/rtc?access_token=" + url.QueryEscape(token)
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	if err == nil {
		_ = ws.Close()
		return http.StatusSwitchingProtocols, "", nil
	}
	if resp == nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b [512]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode, string(b[:n]), nil
}

func (c *Client) readOne(ctx context.Context) (*livekit.SignalResponse, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.ws.SetReadDeadline(dl)
		defer c.ws.SetReadDeadline(time.Time{})
	}
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	msg := &livekit.SignalResponse{}
	return msg, proto.Unmarshal(data, msg)
}

// quiet keeps pion's logs (errors on close, mostly) out of test output.
var quiet = func() *logging.DefaultLoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}()

// newAPI returns an API whose connections use sock for all ICE traffic
// over UDP — each peer connection gets its own socket: the SFU tells
// connections apart by remote address — or, with tcp, active ICE-TCP only
// (sock is then nil).
func newAPI(sock net.PacketConn, tcp bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	for _, e := range []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo}, {sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio}, {"urn:ietf:params:rtp-hdrext:ssrc-audio-level", webrtc.RTPCodecTypeAudio},
	} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{LoggerFactory: quiet}
	se.SetIncludeLoopbackCandidate(true)
	network := webrtc.NetworkTypeUDP4
	if tcp {
		network = webrtc.NetworkTypeTCP4
	}
	se.SetNetworkTypes([]webrtc.NetworkType{network})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	if sock != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(quiet.NewLogger("udpmux"), sock))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

func (c *Client) newPC() (*webrtc.PeerConnection, error) {
	if c.opts.TCPOnly {
		api, err := newAPI(nil, true)
		if err != nil {
			return nil, err
		}
		return api.NewPeerConnection(webrtc.Configuration{})
	}
	sock, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if b, ok := sock.(*net.UDPConn); ok {
		_ = b.SetReadBuffer(2 << 20)
		_ = b.SetWriteBuffer(2 << 20)
	}
	c.socks = append(c.socks, sock)
	api, err := newAPI(sock, false)
	if err != nil {
		return nil, err
	}
	return api.NewPeerConnection(webrtc.Configuration{})
}

func (c *Client) setupPCs() error {
	var err error
	if c.pub, err = c.newPC(); err != nil {
		return err
	}
	if c.sub, err = c.newPC(); err != nil {
		return err
	}
	if err := c.setupDataChannels(); err != nil {
		return err
	}
	c.pub.OnICECandidate(func(ic *webrtc.ICECandidate) { c.trickle(ic, livekit.SignalTarget_PUBLISHER) })
	c.sub.OnICECandidate(func(ic *webrtc.ICECandidate) { c.trickle(ic, livekit.SignalTarget_SUBSCRIBER) })
	c.sub.OnTrack(c.onTrack)
	c.sub.OnDataChannel(func(dc *webrtc.DataChannel) { dc.OnMessage(c.onData) })
	return nil
}

func (c *Client) onData(m webrtc.DataChannelMessage) {
	dp := &livekit.DataPacket{}
	if proto.Unmarshal(m.Data, dp) == nil {
		c.mu.Lock()
		c.data = append(c.data, dp)
		c.mu.Unlock()
		c.wake()
	}
}

func (c *Client) setupDataChannels() error {
	var err error
	ordered := true
	if c.pubReliable, err = c.pub.CreateDataChannel("_reliable", &webrtc.DataChannelInit{Ordered: &ordered}); err != nil {
		return err
	}
	unordered, zero := false, uint16(0)
	if c.pubLossy, err = c.pub.CreateDataChannel("_lossy", &webrtc.DataChannelInit{Ordered: &unordered, MaxRetransmits: &zero}); err != nil {
		return err
	}
	return nil
}

func (c *Client) trickle(ic *webrtc.ICECandidate, target livekit.SignalTarget) {
	if ic == nil {
		return
	}
	if c.opts.NoTrickle {
		return
	}
	b, _ := json.Marshal(ic.ToJSON())
	c.writeMu.Lock()
	if c.ws == nil {
		// Gathered before the signal connection (an offer in the join
		// request): sent once it is open.
		c.earlyTrickle = append(c.earlyTrickle, &livekit.TrickleRequest{CandidateInit: string(b), Target: target})
		c.writeMu.Unlock()
		return
	}
	c.writeMu.Unlock()
	_ = c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{CandidateInit: string(b), Target: target}}})
}

// Send writes one request.
func (c *Client) Send(req *livekit.SignalRequest) error {
	b, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	return c.SendRaw(websocket.BinaryMessage, b)
}

// SendRaw writes one frame as is (tests of malformed input).
func (c *Client) SendRaw(messageType int, b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(messageType, b)
}

func (c *Client) readLoop() {
	defer close(c.readerDone)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			c.mu.Lock()
			if errors.As(err, &ce) {
				c.closeCode, c.closeText = ce.Code, ce.Text
			} else if c.closeCode == 0 {
				c.closeCode = -1
			}
			c.mu.Unlock()
			c.wake()
			return
		}
		msg := &livekit.SignalResponse{}
		if proto.Unmarshal(data, msg) != nil {
			continue
		}
		c.handle(msg)
		if c.opts.KeepMessages {
			c.mu.Lock()
			c.msgs = append(c.msgs, msg)
			c.mu.Unlock()
		}
		c.wake()
	}
}

func (c *Client) wake() {
	c.mu.Lock()
	close(c.notify)
	c.notify = make(chan struct{})
	c.mu.Unlock()
}

func (c *Client) handle(msg *livekit.SignalResponse) {
	switch m := msg.Message.(type) {
	case *livekit.SignalResponse_Offer:
		c.answerSubscriber(m.Offer)
	case *livekit.SignalResponse_Answer:
		select {
		case c.answers <- m.Answer:
		default:
		}
	case *livekit.SignalResponse_Trickle:
		var ic webrtc.ICECandidateInit
		if json.Unmarshal([]byte(m.Trickle.CandidateInit), &ic) != nil {
			return
		}
		c.mu.Lock()
		if m.Trickle.Target == livekit.SignalTarget_PUBLISHER || c.opts.SinglePeerConnection {
			if !c.pubRemote {
				c.pubQueue = append(c.pubQueue, ic)
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			_ = c.pub.AddICECandidate(ic)
			return
		}
		if !c.subRemote {
			c.subQueue = append(c.subQueue, ic)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		_ = c.sub.AddICECandidate(ic)
	case *livekit.SignalResponse_MediaSectionsRequirement:
		c.onMediaSections(m.MediaSectionsRequirement)
	case *livekit.SignalResponse_TrackPublished:
		c.mu.Lock()
		ch := c.published[m.TrackPublished.Cid]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m.TrackPublished.Track:
			default:
			}
		}
	}
}

func (c *Client) answerSubscriber(sd *livekit.SessionDescription) {
	if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sd.Sdp}); err != nil {
		c.mu.Lock()
		c.offers = -1000
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	c.offers++
	c.mu.Unlock()
	ans, err := c.sub.CreateAnswer(nil)
	if err != nil {
		return
	}
	if err := c.sub.SetLocalDescription(ans); err != nil {
		return
	}
	c.mu.Lock()
	c.subRemote = true
	q := c.subQueue
	c.subQueue = nil
	c.mu.Unlock()
	for _, ic := range q {
		_ = c.sub.AddICECandidate(ic)
	}
	_ = c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Answer{Answer: &livekit.SessionDescription{Type: "answer", Sdp: ans.SDP, Id: sd.Id}}})
}

// Negotiate sends a publisher offer and applies the answer.
func (c *Client) Negotiate(ctx context.Context, iceRestart bool) error {
	c.negotiate.Lock()
	defer c.negotiate.Unlock()
	offer, err := c.pub.CreateOffer(&webrtc.OfferOptions{ICERestart: iceRestart})
	if err != nil {
		return err
	}
	if err := c.pub.SetLocalDescription(offer); err != nil {
		return err
	}
	c.offerID++
	if err := c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: offer.SDP, Id: c.offerID}}}); err != nil {
		return err
	}
	return c.awaitAnswer(ctx)
}

// awaitAnswer applies the SFU's answer to the publisher offer just sent.
func (c *Client) awaitAnswer(ctx context.Context) error {
	select {
	case ans := <-c.answers:
		if err := c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.Sdp}); err != nil {
			return err
		}
		c.mu.Lock()
		c.midToTrack = ans.MidToTrackId
		c.mu.Unlock()
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	c.pubRemote = true
	q := c.pubQueue
	c.pubQueue = nil
	c.mu.Unlock()
	for _, ic := range q {
		_ = c.pub.AddICECandidate(ic)
	}
	return nil
}

// AddTrack announces a track and waits for its TrackInfo.
func (c *Client) AddTrack(ctx context.Context, req *livekit.AddTrackRequest) (*livekit.TrackInfo, error) {
	ch := make(chan *livekit.TrackInfo, 1)
	c.mu.Lock()
	c.published[req.Cid] = ch
	c.mu.Unlock()
	if err := c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: req}}); err != nil {
		return nil, err
	}
	select {
	case ti := <-ch:
		return ti, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("lktest: no track published response for %s: %w", req.Cid, ctx.Err())
	}
}

func (c *Client) onTrack(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	rt := &RemoteTrack{SID: remote.ID(), StreamID: remote.StreamID(), Kind: remote.Kind(), Mime: remote.Codec().MimeType}
	rt.LastLayer.Store(-1)
	c.mu.Lock()
	c.tracks[rt.SID] = rt
	c.mu.Unlock()
	c.wake()
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := remote.Read(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			seq := uint16(buf[2])<<8 | uint16(buf[3])
			if rt.seen && seq != rt.lastSeq+1 && int16(seq-rt.lastSeq) > 0 {
				rt.Gaps.Add(1)
				rt.Missing.Add(uint64(int16(seq-rt.lastSeq)) - 1)
			}
			if !rt.seen || int16(seq-rt.lastSeq) > 0 {
				rt.lastSeq, rt.seen = seq, true
			}
			rt.Packets.Add(1)
			rt.Bytes.Add(uint64(n))
			if c.opts.OnRTP != nil {
				c.opts.OnRTP(rt, buf[:n])
			}
			if l := layerMarker(buf[:n]); l >= 0 {
				rt.LastLayer.Store(int32(l))
				rt.LayerPackets[l].Add(1)
			}
		}
	}()
}

// Track returns what arrived on a subscribed track so far, or nil.
func (c *Client) Track(sid string) *RemoteTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tracks[sid]
}

// Data returns the data packets received so far.
func (c *Client) Data() []*livekit.DataPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*livekit.DataPacket(nil), c.data...)
}

// SendData sends a data packet over the publisher's reliable or lossy
// channel.
func (c *Client) SendData(dp *livekit.DataPacket, lossy bool) error {
	b, err := proto.Marshal(dp)
	if err != nil {
		return err
	}
	if lossy {
		return c.pubLossy.Send(b)
	}
	return c.pubReliable.Send(b)
}

// WaitFor waits until cond holds, checking whenever something arrives.
func (c *Client) WaitFor(ctx context.Context, what string, cond func() bool) error {
	for {
		c.mu.Lock()
		ch := c.notify
		c.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("lktest: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// WaitPackets waits until more than n packets of the subscribed track sid
// have arrived.
func (c *Client) WaitPackets(ctx context.Context, what, sid string, n uint64) error {
	return c.WaitFor(ctx, what, func() bool { tr := c.Track(sid); return tr != nil && tr.Packets.Load() > n })
}

// WaitMessage waits for a signal response matching match (KeepMessages
// must be on) and returns it.
func (c *Client) WaitMessage(ctx context.Context, what string, match func(*livekit.SignalResponse) bool) (*livekit.SignalResponse, error) {
	var found *livekit.SignalResponse
	err := c.WaitFor(ctx, what, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, m := range c.msgs {
			if match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// Closed reports the WebSocket close code and text once the server closed
// the connection (code -1: dropped without a close frame).
func (c *Client) Closed() (code int, text string, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode, c.closeText, c.closeCode != 0
}

// Debug describes the client's connection states, for failure messages.
func (c *Client) Debug() string {
	c.mu.Lock()
	offers := c.offers
	c.mu.Unlock()
	return fmt.Sprintf("sub %s/%s/%s, pub %s/%s, offers answered %d", c.sub.SignalingState(), c.sub.ICEConnectionState(), c.sub.ConnectionState(),
		c.pub.SignalingState(), c.pub.ConnectionState(), offers)
}

// SubscriberState is the subscriber connection's state.
func (c *Client) SubscriberState() webrtc.PeerConnectionState { return c.sub.ConnectionState() }

// PublisherState is the publisher connection's state.
func (c *Client) PublisherState() webrtc.PeerConnectionState { return c.pub.ConnectionState() }

// Leave sends a leave request and closes everything.
func (c *Client) Leave() {
	_ = c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{
		Reason: livekit.DisconnectReason_CLIENT_INITIATED, Action: livekit.LeaveRequest_DISCONNECT,
	}}})
	c.Close()
}

// DropSignal closes the WebSocket without a leave, as a network change
// does, keeping the peer connections for a resume.
func (c *Client) DropSignal() {
	_ = c.ws.Close()
	<-c.readerDone
}

// Resume opens a new signal connection for the same session
// (reconnect=1) after DropSignal, and restarts ICE on the publisher, as
// livekit-client does; the SFU restarts ICE on the subscriber.
func (c *Client) Resume(ctx context.Context, baseURL, token string) error {
	opts := c.opts
	opts.Reconnect, opts.ParticipantSID = true, c.Join.Participant.Sid
	c.mu.Lock()
	c.closeCode, c.closeText = 0, ""
	c.readerDone = make(chan struct{})
	c.mu.Unlock()
	if err := c.dial(ctx, baseURL, token, opts); err != nil {
		close(c.readerDone)
		return err
	}
	go c.readLoop()
	if c.pub.RemoteDescription() != nil {
		return c.Negotiate(ctx, true)
	}
	return nil
}

// MidToTrack is the SFU's last answer's map of the mids it sends on to
// track SIDs (one connection only).
func (c *Client) MidToTrack() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.midToTrack
}

// SectionRequests counts the SFU's requests for more receive sections
// (or for a new offer) that this client answered.
func (c *Client) SectionRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sectionRequests
}

// Close ends the client: WebSocket, peer connections, media sources and
// reader goroutines.
func (c *Client) Close() {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	close(c.stop)
	_ = c.ws.Close()
	<-c.readerDone
	// A connection whose ICE is still checking has pion's ICE start
	// running in its operations queue; closing it then races with the
	// start's last write (pion v3's ICETransport.stop reads t.mux outside
	// its lock: the race detector caught it in TestNAT1To1). No offer comes
	// any more (the reader is done): a bounded wait lets a check that is
	// about to end do so.
	for _, pc := range []*webrtc.PeerConnection{c.pub, c.sub} {
		settleICE(pc, 2*time.Second)
	}
	// The RTCP readers end at a read deadline, which is what pion needs
	// (closing the connection under a reader races in pion's sender) — but
	// only once the publisher's DTLS is up: before, pion's SetReadDeadline
	// waits for SRTP, for good if it never comes. A publisher that never
	// connected is closed first, which releases its readers.
	// A bounded wait covers the moment between DTLS and SRTP.
	if c.pub.SCTP().Transport().State() == webrtc.DTLSTransportStateConnected {
		c.mu.Lock()
		stops := c.rtcpStops
		c.mu.Unlock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, f := range stops {
				f()
			}
			c.rtcpReaders.Wait()
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	_ = c.pub.Close()
	_ = c.sub.Close()
	c.rtcpReaders.Wait()
	for _, s := range c.socks {
		_ = s.Close()
	}
	c.workers.Wait()
}

// settleICE waits, up to limit, while pc has a remote description and its
// ICE is new or checking.
func settleICE(pc *webrtc.PeerConnection, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for pc.RemoteDescription() != nil && time.Now().Before(deadline) {
		switch pc.ICEConnectionState() {
		case webrtc.ICEConnectionStateNew, webrtc.ICEConnectionStateChecking:
			time.Sleep(10 * time.Millisecond)
		default:
			return
		}
	}
}
