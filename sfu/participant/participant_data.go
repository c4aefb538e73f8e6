package participant

// Data packets: the client's reliable and lossy channels in, rate limited, and out.

import (
	"errors"
	"io"
	"sync"
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

// dataReadSize is the read buffer each open data channel keeps. Data
// packets are mostly small (chat, reactions, state); a larger one is read
// again into a pooled buffer of maxDataMessage bytes. pion's own read
// loop holds a 64 KiB buffer for each open channel, and a participant has
// four (two per connection): 26 MiB for a call of 100.
const dataReadSize = 1 << 10

var largeDataBufs = sync.Pool{New: func() any {
	b := make([]byte, maxDataMessage)
	return &b
}}

// readData runs handle on each message dc receives (nil: reads and drops
// them, which also answers the channel's DCEP handshake). The SFU's
// SettingEngine detaches data channels (DetachDataChannels), so the
// participant reads them itself with a small buffer; on an API that does
// not, pion's read loop calls handle.
func (p *Participant) readData(dc *webrtc.DataChannel, handle func([]byte)) {
	if handle != nil {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { handle(m.Data) })
	}
	dc.OnOpen(func() {
		rw, err := dc.Detach()
		if err != nil {
			return // not detached: pion reads
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.workers.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.workers.Done()
			if errors.Is(readDataLoop(rw, handle), io.EOF) {
				_ = dc.Close() // the client closed it
			}
		}()
	})
}

// dataReader is a detached channel (pion/datachannel's Reader).
type dataReader interface {
	ReadDataChannel([]byte) (n int, isString bool, err error)
}

// readDataLoop reads rw until it fails (the channel or its connection
// closed) and returns why. A message larger than the small buffer stays
// queued in SCTP (io.ErrShortBuffer) and is read again into a large one;
// one larger than maxDataMessage ends the loop, as it ends pion's.
func readDataLoop(rw dataReader, handle func([]byte)) error {
	buf := make([]byte, dataReadSize)
	for {
		n, _, err := rw.ReadDataChannel(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			large := largeDataBufs.Get().(*[]byte)
			n, _, err = rw.ReadDataChannel(*large)
			if err == nil && handle != nil {
				handle((*large)[:n])
			}
			largeDataBufs.Put(large)
			if err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if handle != nil {
			handle(buf[:n])
		}
	}
}

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
	// msg is the read buffer, reused: Unmarshal copies what it keeps.
	p.readData(dc, func(msg []byte) {
		if len(msg) > maxDataMessage {
			return
		}
		p.mu.Lock()
		allowed := p.permission.CanPublishData && p.takeDataTokensLocked(len(msg))
		p.mu.Unlock()
		if !allowed {
			return
		}
		dp := &livekit.DataPacket{}
		if err := proto.Unmarshal(msg, dp); err != nil {
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
