package lktest

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
)

// layerMagic marks synthetic VP8 payloads: after the payload descriptor,
// the 3-byte VP8 frame tag and the 7 bytes a keyframe's header takes (start
// code, width, height) come layerMagic and the layer index, so a
// subscriber can tell which simulcast layer it receives.
const layerMagic = 0xA5

// vp8MagicAt is where layerMagic sits in a synthetic VP8 payload: a 6-byte
// descriptor (X; I, L, T; 15-bit picture ID; TL0PICIDX; TID), the frame
// tag and the keyframe header. Browsers send L with T (RFC 7741 §4.2: L
// set, T set); LiveKit refuses L without T as an invalid packet.
const vp8MagicAt = 6 + 3 + 7

// layerMarker returns the layer index carried by a synthetic VP8 packet
// (whole RTP packet), or -1.
func layerMarker(pkt []byte) int {
	var h rtp.Header
	n, err := h.Unmarshal(pkt)
	if err != nil {
		return -1
	}
	p := pkt[n:]
	// Payload written by PublishVideo (see vp8MagicAt).
	if len(p) < vp8MagicAt+2 || p[0]&0x80 == 0 {
		return -1
	}
	i := vp8MagicAt
	if p[i] != layerMagic || p[i+1] > 2 {
		return -1
	}
	return int(p[i+1])
}

// Source sends synthetic media on one published track until Stop.
type Source struct {
	Info    *livekit.TrackInfo
	stopped chan struct{}
	done    chan struct{}
	sent    atomic.Uint64
	layer   [3]atomic.Uint64 // packets sent per simulcast layer
	keyReq  [3]atomic.Bool
	// dtx makes a silent audio source send comfort noise only (one packet
	// per 400 ms), as Opus DTX does.
	dtx atomic.Bool
}

// Sent is the number of RTP packets written.
func (s *Source) Sent() uint64 { return s.sent.Load() }

// SentOnLayer is the number of RTP packets written on one simulcast layer.
func (s *Source) SentOnLayer(i int) uint64 { return s.layer[i].Load() }

// Stop ends the source and waits for its goroutines.
func (s *Source) Stop() {
	select {
	case <-s.stopped:
	default:
		close(s.stopped)
	}
	<-s.done
}

func extID(params webrtc.RTPSendParameters, uri string) uint8 {
	for _, e := range params.HeaderExtensions {
		if e.URI == uri {
			return uint8(e.ID)
		}
	}
	return 0
}

// PublishAudio announces a microphone track and sends 20 ms Opus-shaped
// packets with an audio level (loud when speaking, else silent-ish).
func (c *Client) PublishAudio(ctx context.Context, cid string, speaking *atomic.Bool) (*Source, error) {
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, cid, "stream-"+cid)
	if err != nil {
		return nil, err
	}
	info, err := c.AddTrack(ctx, &livekit.AddTrackRequest{Cid: cid, Name: "microphone", Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE})
	if err != nil {
		return nil, err
	}
	sender, err := c.addSendTrack(track)
	if err != nil {
		return nil, err
	}
	if err := c.Negotiate(ctx, false); err != nil {
		return nil, err
	}
	s := &Source{Info: info, stopped: make(chan struct{}), done: make(chan struct{})}
	levelID := extID(sender.GetParameters(), "urn:ietf:params:rtp-hdrext:ssrc-audio-level")
	c.workers.Add(2)
	go func() {
		defer c.workers.Done()
		drainRTCP(sender)
	}()
	go func() {
		defer c.workers.Done()
		defer close(s.done)
		payload := make([]byte, 60)
		payload[0] = 0xfc
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: 1}, Payload: payload}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-s.stopped:
				return
			case <-c.stop:
				return
			case <-tick.C:
			}
			n++
			if s.dtx.Load() && (speaking == nil || !speaking.Load()) && n%20 != 0 {
				pkt.Timestamp += 960
				continue
			}
			pkt.SequenceNumber++
			pkt.Timestamp += 960 // 20 ms at 48 kHz
			pkt.Header.Extensions = pkt.Header.Extensions[:0]
			pkt.Header.Extension = false
			if levelID != 0 {
				level := byte(127)
				if speaking != nil && speaking.Load() {
					level = 20
				}
				_ = pkt.Header.SetExtension(levelID, []byte{0x80 | level})
			}
			if track.WriteRTP(pkt) == nil {
				s.sent.Add(1)
			}
		}
	}()
	return s, nil
}

func drainRTCP(sender *webrtc.RTPSender) {
	for {
		if _, _, err := sender.ReadRTCP(); err != nil {
			return
		}
	}
}

// VideoLayerSpec is one simulcast layer of a synthetic video source.
type VideoLayerSpec struct {
	RID           string
	Quality       livekit.VideoQuality
	Width, Height uint32
	// PacketsPerFrame and PacketSize shape the bitrate (30 frames/s).
	PacketsPerFrame int
	PacketSize      int
}

// DefaultSimulcast is livekit-client's camera simulcast: q, h, f.
var DefaultSimulcast = []VideoLayerSpec{
	{RID: "q", Quality: livekit.VideoQuality_LOW, Width: 320, Height: 180, PacketsPerFrame: 1, PacketSize: 600},
	{RID: "h", Quality: livekit.VideoQuality_MEDIUM, Width: 640, Height: 360, PacketsPerFrame: 2, PacketSize: 1000},
	{RID: "f", Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720, PacketsPerFrame: 5, PacketSize: 1100},
}

// PublishVideo announces a camera track with the given simulcast layers
// (one layer: no simulcast) and sends synthetic VP8 frames at 30 frames/s,
// a keyframe every 3 s and whenever the SFU asks.
func (c *Client) PublishVideo(ctx context.Context, cid string, layers []VideoLayerSpec) (*Source, error) {
	capab := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	req := &livekit.AddTrackRequest{Cid: cid, Name: "camera", Type: livekit.TrackType_VIDEO, Source: livekit.TrackSource_CAMERA,
		Width: layers[len(layers)-1].Width, Height: layers[len(layers)-1].Height}
	tracks := make([]*webrtc.TrackLocalStaticRTP, len(layers))
	for i, l := range layers {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if len(layers) > 1 {
			opts = append(opts, webrtc.WithRTPStreamID(l.RID))
			req.Layers = append(req.Layers, &livekit.VideoLayer{Quality: l.Quality, Width: l.Width, Height: l.Height, Rid: l.RID})
		}
		t, err := webrtc.NewTrackLocalStaticRTP(capab, cid, "stream-"+cid, opts...)
		if err != nil {
			return nil, err
		}
		tracks[i] = t
	}
	info, err := c.AddTrack(ctx, req)
	if err != nil {
		return nil, err
	}
	sender, err := c.addSendTrack(tracks[0])
	if err != nil {
		return nil, err
	}
	for _, t := range tracks[1:] {
		if err := sender.AddEncoding(t); err != nil {
			return nil, fmt.Errorf("simulcast encoding: %w", err)
		}
	}
	if err := c.Negotiate(ctx, false); err != nil {
		return nil, err
	}
	params := sender.GetParameters()
	midID, ridID := extID(params, sdp.SDESMidURI), extID(params, sdp.SDESRTPStreamIDURI)
	var mid string
	for _, tr := range c.pub.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid()
		}
	}
	s := &Source{Info: info, stopped: make(chan struct{}), done: make(chan struct{})}
	c.mu.Lock()
	c.rtcpStops = append(c.rtcpStops, func() {
		for _, l := range layers {
			if len(layers) > 1 {
				_ = sender.SetReadDeadlineSimulcast(time.Now(), l.RID)
			} else {
				_ = sender.SetReadDeadline(time.Now())
			}
		}
	})
	c.mu.Unlock()
	for i := range layers {
		i := i
		c.rtcpReaders.Add(1)
		go func() {
			defer c.rtcpReaders.Done()
			for {
				var pkts []rtcp.Packet
				var err error
				if len(layers) > 1 {
					pkts, _, err = sender.ReadSimulcastRTCP(layers[i].RID)
				} else {
					pkts, _, err = sender.ReadRTCP()
				}
				if err != nil {
					return
				}
				for _, p := range pkts {
					switch p.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						s.keyReq[i].Store(true)
					}
				}
			}
		}()
	}
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		defer close(s.done)
		type state struct {
			pkt rtp.Packet
			pic uint16
			tl0 uint8
			buf []byte
		}
		st := make([]state, len(layers))
		for i := range st {
			st[i].pic = uint16(i * 1000)
			st[i].buf = make([]byte, layers[i].PacketSize)
			st[i].pkt.Header = rtp.Header{Version: 2, SequenceNumber: uint16(i * 10000), Timestamp: uint32(i) * 1e6}
		}
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		frame := 0
		for {
			select {
			case <-s.stopped:
				return
			case <-c.stop:
				return
			case <-tick.C:
			}
			frame++
			for i, l := range layers {
				x := &st[i]
				key := frame == 1 || frame%90 == 0 || s.keyReq[i].Swap(false)
				x.pic = (x.pic + 1) & 0x7fff
				x.tl0++
				x.pkt.Timestamp += 3000
				for k := 0; k < l.PacketsPerFrame; k++ {
					p := x.buf
					p[0] = 0x80 // X
					if k == 0 {
						p[0] |= 0x10 // S, partition 0
					}
					p[1] = 0xe0 // I, L, T
					p[2] = 0x80 | byte(x.pic>>8)
					p[3] = byte(x.pic)
					p[4] = x.tl0
					p[5] = 0x20 // TID 0, Y
					p[6] = 0x01 // inter frame
					if key && k == 0 {
						p[6] = 0x00
					}
					p[7], p[8] = 0, 0
					// A keyframe's start code and size (RFC 6386 §9.1);
					// filler in the other packets.
					p[9], p[10], p[11] = 0x9d, 0x01, 0x2a
					p[12], p[13] = byte(l.Width), byte(l.Width>>8)
					p[14], p[15] = byte(l.Height), byte(l.Height>>8)
					p[vp8MagicAt], p[vp8MagicAt+1] = layerMagic, byte(i)
					x.pkt.Payload = p
					x.pkt.SequenceNumber++
					x.pkt.Marker = k == l.PacketsPerFrame-1
					x.pkt.Header.Extensions = x.pkt.Header.Extensions[:0]
					x.pkt.Header.Extension = false
					if len(layers) > 1 {
						if midID != 0 {
							_ = x.pkt.Header.SetExtension(midID, []byte(mid))
						}
						if ridID != 0 {
							_ = x.pkt.Header.SetExtension(ridID, []byte(l.RID))
						}
					}
					if tracks[i].WriteRTP(&x.pkt) == nil {
						s.sent.Add(1)
						s.layer[i].Add(1)
					}
				}
			}
		}
	}()
	return s, nil
}

// Mute sends a mute request for a published track.
func (c *Client) Mute(sid string, muted bool) error {
	return c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Mute{Mute: &livekit.MuteTrackRequest{Sid: sid, Muted: muted}}})
}

// UpdateTrackSettings asks for a size (adaptive stream) or quality of a
// subscribed track.
func (c *Client) UpdateTrackSettings(s *livekit.UpdateTrackSettings) error {
	return c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_TrackSetting{TrackSetting: s}})
}
