package participant

// Offers and answers: the publisher connection's answer and the subscriber connection's negotiation.

import (
	"fmt"
	"strings"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"
)

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
	pub, err := p.publisher()
	if err != nil {
		return err
	}
	if err := pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sd.Sdp}); err != nil {
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
