package participant

// The publisher side: tracks the client adds and sends, and who may publish.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
	"google.golang.org/protobuf/proto"
)

const audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

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

func (p *Participant) writePublisherRTCP(pkt rtcp.Packet) {
	if err := p.pub.WriteRTCP([]rtcp.Packet{pkt}); err != nil {
		p.log.Debug("rtcp to publisher", "err", err)
	}
}
