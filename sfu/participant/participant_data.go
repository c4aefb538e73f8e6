package participant

// Data packets: the client's reliable and lossy channels in, rate limited, and out.

import (
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"
	"google.golang.org/protobuf/proto"
)

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
