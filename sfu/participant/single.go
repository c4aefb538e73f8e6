package participant

import (
	"fmt"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"
)

// One peer connection for both directions (LiveKit's /rtc/v1 signalling,
// what livekit-client 2.x tries first). The client offers it with
// receive-only media sections ready for what it will be sent; the SFU
// answers, putting subscribed tracks on free sections of their kind. The
// SFU never offers: to carry a change it asks the client for a new offer
// with a MediaSectionsRequirement, which also says how many more sections
// of each kind it needs.

// gatherWait bounds how long an answer waits for the SFU's candidates.
const gatherWait = 250 * time.Millisecond

// newSingleConnection creates the one connection of a single-mode
// participant. It is the subscriber's connection too, so it carries the
// bandwidth estimator when there is one.
func (p *Participant) newSingleConnection() error {
	p.single = true
	p.pubAPI = p.params.API
	if p.params.SubscriberAPI != nil {
		p.pubAPI = p.params.SubscriberAPI
	}
	pc, err := p.pubAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("peer connection: %w", err)
	}
	p.pub, p.sub = pc, pc
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(c, livekit.SignalTarget_PUBLISHER) })
	pc.OnTrack(p.onTrack)
	pc.OnDataChannel(p.onDataChannel)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.log.Debug("peer connection", "state", s.String())
		p.onSubscriberState(s)
		if s == webrtc.PeerConnectionStateConnected {
			p.setActive()
			p.subConnected.Store(true)
		}
	})
	p.watchSelectedPair()
	return nil
}

// handleSingleOffer answers a client offer on the ops goroutine, where
// subscriptions change the connection, so that the answer and the
// mid-to-track map describe one state.
func (p *Participant) handleSingleOffer(sd *livekit.SessionDescription) error {
	if sd == nil || sd.Type != "offer" {
		return fmt.Errorf("%w: offer of type %q", ErrProtocol, sd.GetType())
	}
	done := make(chan error, 1)
	p.enqueue(func() { done <- p.answerSingleOffer(sd) })
	select {
	case err := <-done:
		return err
	case <-p.opsDone:
		return nil
	}
}

func (p *Participant) answerSingleOffer(sd *livekit.SessionDescription) error {
	if p.isClosed() {
		return nil
	}
	before := p.unplacedSections()
	// What changed from now on needs another offer.
	p.offerAsked = false
	if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sd.Sdp}); err != nil {
		return fmt.Errorf("%w: unusable offer: %v", ErrProtocol, err)
	}
	after := p.unplacedSections()
	for k := range p.sectionsAsked {
		p.sectionsAsked[k] = max(0, p.sectionsAsked[k]-(before[k]-after[k]))
	}
	p.idleEmptySections()
	answer, err := p.answerOffer()
	if err != nil {
		return err
	}
	// The SFU's candidates are its listening sockets, gathered at once:
	// put them in the answer. Trickled alone, they can reach the client
	// after the SFU's first connectivity checks, which then make them
	// peer-reflexive, and ICE agents wait before nominating those.
	sdp := answer.SDP
	select {
	case <-webrtc.GatheringCompletePromise(p.pub):
		if ld := p.pub.LocalDescription(); ld != nil {
			sdp = ld.SDP
		}
	case <-time.After(gatherWait):
	}
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Answer{Answer: &livekit.SessionDescription{
		Type: "answer", Sdp: sdp, Id: sd.Id, MidToTrackId: p.sendingMids(),
	}}})
	// Tracks subscribed before the client had sections for them.
	if after[0] > p.sectionsAsked[0] || after[1] > p.sectionsAsked[1] {
		p.askForOffer()
	}
	return nil
}

// sendingMids maps the mid of each section carrying a subscribed track to
// the track's SID: livekit-client names the tracks it receives on its
// single connection by it.
func (p *Participant) sendingMids() map[string]string {
	mids := map[string]string{}
	for _, tr := range p.pub.GetTransceivers() {
		if s := tr.Sender(); s != nil && s.Track() != nil && tr.Mid() != "" {
			mids[tr.Mid()] = s.Track().ID()
		}
	}
	return mids
}

// unplacedSections counts subscribed tracks (audio, video) still waiting
// for a media section of the client's.
func (p *Participant) unplacedSections() [2]int {
	var n [2]int
	for _, tr := range p.pub.GetTransceivers() {
		if tr.Mid() != "" || tr.Sender() == nil || tr.Sender().Track() == nil {
			continue
		}
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			n[0]++
		} else {
			n[1]++
		}
	}
	return n
}

// idleEmptySections makes the sections the client offered to receive on,
// and that carry no track yet, inactive in the answer. Pion would answer
// them sendonly without a stream, and a browser fires its track event once,
// on the first answer that sends: the track placed there later would go
// unannounced. Inactive now, sendonly with the track's stream later, the
// event comes when the track does.
func (p *Participant) idleEmptySections() {
	for _, tr := range p.pub.GetTransceivers() {
		if tr.Sender() != nil || tr.Direction() != webrtc.RTPTransceiverDirectionSendonly || tr.Mid() == "" {
			continue
		}
		mime := webrtc.MimeTypeVP8
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			mime = webrtc.MimeTypeOpus
		}
		placeholder, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime}, "idle", "idle")
		if err != nil {
			continue
		}
		sender, err := p.pubAPI.NewRTPSender(placeholder, p.pub.SCTP().Transport())
		if err != nil {
			continue
		}
		if err := tr.SetSender(sender, placeholder); err != nil {
			continue
		}
		if err := p.pub.RemoveTrack(sender); err != nil {
			p.log.Debug("idle section", "mid", tr.Mid(), "err", err)
		}
	}
}

// renegotiate carries a change of the subscriptions to the client: a
// subscriber offer, or in single mode a request for the client's offer.
// Runs on the ops goroutine.
func (p *Participant) renegotiate() {
	if p.single {
		p.askForOffer()
		return
	}
	p.negotiateSubscriber(false)
}

// askForOffer asks the client for a new offer, with as many new media
// sections as subscribed tracks are waiting for one. An offer already
// asked for carries every change made before it is answered, so only new
// sections make a second request. Runs on the ops goroutine.
func (p *Participant) askForOffer() {
	if p.isClosed() || p.pub.RemoteDescription() == nil {
		return // the client's first offer is on its way; its answer looks again
	}
	waiting := p.unplacedSections()
	var more [2]int
	for k := range waiting {
		more[k] = max(0, waiting[k]-p.sectionsAsked[k])
	}
	if p.offerAsked && more[0] == 0 && more[1] == 0 {
		return
	}
	p.offerAsked = true
	p.sectionsAsked[0] += more[0]
	p.sectionsAsked[1] += more[1]
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_MediaSectionsRequirement{
		MediaSectionsRequirement: &livekit.MediaSectionsRequirement{NumAudios: uint32(more[0]), NumVideos: uint32(more[1])},
	}})
}
