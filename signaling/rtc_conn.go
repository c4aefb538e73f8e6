package signaling

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/salonhq/salon/sfu"
)

const (
	// maxSignalMessage caps one client frame (an SDP offer with many
	// sections is the largest legitimate one).
	maxSignalMessage = 1 << 20
	// outQueue is how many responses may wait for a slow client before it
	// is dropped.
	outQueue = 512
	// writeTimeout bounds one frame write to a stalled client.
	writeTimeout = 10 * time.Second
	// A client may send signalRate frames per second on average, in bursts
	// of signalBurst (a trickle of candidates, a batch of settings).
	signalRate  = 50
	signalBurst = 200
)

type endKind int

const (
	endLost endKind = iota
	endClosed
	endLeft
	endViolation
)

type ending struct {
	kind   endKind
	reason string
}

// rtcConn is one signal WebSocket: one reader (the HTTP handler's
// goroutine) and one writer pump that owns every write.
type rtcConn struct {
	ws      *websocket.Conn
	log     *slog.Logger
	metrics *rtcMetrics

	out        chan []byte
	closeReq   chan struct{}
	closeOnce  sync.Once
	closeCode  int
	closeText  string
	writerDone chan struct{}
	readDone   chan struct{}
	// refresh, set before the first refresh is due, builds a refresh
	// token message; the writer sends one every refreshEvery.
	refresh      func() *livekit.SignalResponse
	refreshEvery time.Duration
	refreshReady chan struct{}
	readFailed   bool
}

func newRTCConn(ws *websocket.Conn, log *slog.Logger, m *rtcMetrics) *rtcConn {
	return &rtcConn{
		ws:           ws,
		log:          log,
		metrics:      m,
		out:          make(chan []byte, outQueue),
		closeReq:     make(chan struct{}),
		writerDone:   make(chan struct{}),
		readDone:     make(chan struct{}),
		refreshReady: make(chan struct{}),
	}
}

func (c *rtcConn) start() { go c.writeLoop() }

// wait closes the connection if nobody has and waits for the writer.
func (c *rtcConn) wait() {
	c.CloseSignal("")
	<-c.writerDone
}

// finishReading stops reading: it reads and discards until the client
// answers the close frame (or d passes), so that closing the socket with
// unread input does not reset the connection before the client has read
// our leave request and close reason.
func (c *rtcConn) finishReading(d time.Duration) {
	defer close(c.readDone)
	if c.readFailed {
		return
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(d))
	for {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			return
		}
	}
}

// SendSignal queues a response. A client that lets outQueue responses pile
// up is not reading: it is dropped rather than allowed to hold memory.
func (c *rtcConn) SendSignal(msg *livekit.SignalResponse) bool {
	b, err := proto.Marshal(msg)
	if err != nil {
		return false
	}
	select {
	case <-c.closeReq:
		return false
	default:
	}
	select {
	case c.out <- b:
		return true
	default:
		c.metrics.violations.WithLabelValues("stalled").Inc()
		c.closeWith(websocket.ClosePolicyViolation, "signal connection stalled: client not reading")
		return false
	}
}

// CloseSignal ends the connection after the queued responses.
func (c *rtcConn) CloseSignal(reason string) { c.closeWith(websocket.CloseNormalClosure, reason) }

func (c *rtcConn) closeWith(code int, reason string) {
	c.closeOnce.Do(func() {
		if len(reason) > 120 {
			reason = reason[:120]
		}
		c.closeCode, c.closeText = code, reason
		close(c.closeReq)
	})
}

func (c *rtcConn) write(b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// startRefresh arms the token refresh (after refresh and refreshEvery are
// set).
func (c *rtcConn) startRefresh() { close(c.refreshReady) }

func (c *rtcConn) writeLoop() {
	defer close(c.writerDone)
	defer c.ws.Close()
	var refresh <-chan time.Time
	ready := c.refreshReady
	for {
		select {
		case <-ready:
			ready = nil
			if c.refresh != nil && c.refreshEvery > 0 {
				t := time.NewTicker(c.refreshEvery)
				defer t.Stop()
				refresh = t.C
			}
		case <-refresh:
			if msg := c.refresh(); msg != nil {
				if b, err := proto.Marshal(msg); err == nil && c.write(b) != nil {
					c.closeWith(websocket.CloseAbnormalClosure, "write failed")
					return
				}
			}
		case b := <-c.out:
			if err := c.write(b); err != nil {
				c.closeWith(websocket.CloseAbnormalClosure, "write failed")
				return
			}
		case <-c.closeReq:
			for {
				select {
				case b := <-c.out:
					if c.write(b) != nil {
						return
					}
					continue
				default:
				}
				break
			}
			msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			select {
			case <-c.readDone:
			case <-time.After(2 * time.Second):
			}
			return
		}
	}
}

func (c *rtcConn) closing() bool {
	select {
	case <-c.closeReq:
		return true
	default:
		return false
	}
}

// readLoop reads requests until the connection ends, answering pings and
// handing the rest to the session.
func (c *rtcConn) readLoop(sess *sfu.Session, timeout time.Duration) ending {
	c.ws.SetReadLimit(maxSignalMessage)
	tokens, last := float64(signalBurst), time.Now()
	violation := func(kind, reason string) ending {
		c.metrics.violations.WithLabelValues(kind).Inc()
		return ending{kind: endViolation, reason: reason}
	}
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed = true
			if c.closing() {
				return ending{kind: endClosed, reason: c.closeText}
			}
			if errors.Is(err, websocket.ErrReadLimit) {
				return violation("too_large", "signal message too large")
			}
			return ending{kind: endLost, reason: "signal connection lost"}
		}
		now := time.Now()
		tokens += now.Sub(last).Seconds() * signalRate
		last = now
		if tokens > signalBurst {
			tokens = signalBurst
		}
		if tokens < 1 {
			return violation("flood", "signal flood: too many messages")
		}
		tokens--
		if mt != websocket.BinaryMessage {
			return violation("text", "text frames are not supported: send binary protobuf SignalRequest")
		}
		req := &livekit.SignalRequest{}
		if err := proto.Unmarshal(data, req); err != nil {
			return violation("malformed", "malformed signal request: not a protobuf SignalRequest")
		}
		switch m := req.Message.(type) {
		case nil:
			if len(req.ProtoReflect().GetUnknown()) == 0 {
				return violation("malformed", "malformed signal request: empty")
			}
			continue // a newer request this server does not know
		case *livekit.SignalRequest_Ping:
			c.SendSignal(&livekit.SignalResponse{Message: &livekit.SignalResponse_Pong{Pong: time.Now().UnixMilli()}})
			continue
		case *livekit.SignalRequest_PingReq:
			c.SendSignal(&livekit.SignalResponse{Message: &livekit.SignalResponse_PongResp{PongResp: &livekit.Pong{
				LastPingTimestamp: m.PingReq.Timestamp, Timestamp: time.Now().UnixMilli(),
			}}})
			continue
		}
		if end, stop := c.handle(sess, req); stop {
			return end
		}
	}
}

// handle hands one request to the session; stop reports that it ended
// the session.
func (c *rtcConn) handle(sess *sfu.Session, req *livekit.SignalRequest) (end ending, stop bool) {
	err := sess.HandleRequest(req)
	switch {
	case err == nil:
		return ending{}, false
	case errors.Is(err, sfu.ErrLeft):
		return ending{kind: endLeft, reason: "left"}, true
	case errors.Is(err, sfu.ErrProtocol):
		c.metrics.violations.WithLabelValues("protocol").Inc()
		return ending{kind: endViolation, reason: err.Error()}, true
	default:
		c.log.Warn("signal request failed", "err", err)
		return ending{}, false
	}
}

// handleJoinRequests acts on what a /rtc/v1 join request carried, as if
// the client had sent it after the join response: tracks to publish, then
// the offer of its connection. ok is false when that ended the session.
func (c *rtcConn) handleJoinRequests(sess *sfu.Session, jp *joinParams) (end ending, ok bool) {
	for _, at := range jp.addTracks {
		if end, stop := c.handle(sess, &livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: at}}); stop {
			return end, false
		}
	}
	if jp.offer != nil {
		if end, stop := c.handle(sess, &livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: jp.offer}}); stop {
			return end, false
		}
	}
	return ending{}, true
}
