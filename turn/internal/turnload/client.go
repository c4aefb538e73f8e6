// Package turnload is a minimal TURN client (RFC 5766, long-term
// credentials, ChannelData) and a load generator built on it. It drives the
// embedded relay and coturn alike in tests and benchmarks, so it speaks
// only the wire protocol and imports no Salon package.
package turnload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pion/stun"
)

// ErrorResponse is a TURN error response. Code is 0 when the server sent
// none (pion/turn v2 alone answers a refused CreatePermission that way;
// Salon's relay answers 403).
type ErrorResponse struct {
	Method stun.Method
	Code   stun.ErrorCode
	Reason string
}

func (e *ErrorResponse) Error() string {
	return fmt.Sprintf("turn %s: error %d %s", e.Method, e.Code, e.Reason)
}

// ErrTimeout: no response within the client's retransmissions.
var ErrTimeout = errors.New("turnload: no response")

// Client holds one TURN allocation's control connection.
type Client struct {
	conn     net.Conn
	stream   bool // TCP: frames, no retransmission
	username string
	password string
	realm    string
	nonce    stun.Nonce

	// RTO is the first retransmission timeout over UDP (doubling, 4 tries);
	// over TCP the whole wait.
	RTO time.Duration

	rbuf  []byte
	pend  []byte // TCP bytes read past the last frame
	wbuf  []byte
	relay *net.UDPAddr
}

// Dial connects to a TURN server over "udp" or "tcp".
func Dial(network, server, username, password string) (*Client, error) {
	c, err := net.Dial(network, server)
	if err != nil {
		return nil, err
	}
	return NewClient(c, username, password), nil
}

// NewClient uses conn (a connected UDP socket or a TCP connection).
func NewClient(conn net.Conn, username, password string) *Client {
	_, stream := conn.(*net.TCPConn)
	if _, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		stream = true
	}
	return &Client{
		conn: conn, stream: stream, username: username, password: password,
		RTO:  250 * time.Millisecond,
		rbuf: make([]byte, 64*1024),
		wbuf: make([]byte, 0, 2048),
	}
}

// Close closes the connection (without deleting the allocation).
func (c *Client) Close() error { return c.conn.Close() }

// LocalAddr is the client's own address.
func (c *Client) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// Relay is the relayed address of the allocation, once allocated.
func (c *Client) Relay() *net.UDPAddr { return c.relay }

// Allocate requests a UDP relay allocation.
func (c *Client) Allocate() (*net.UDPAddr, error) {
	res, err := c.do(stun.MethodAllocate, requestedTransportUDP{})
	if err != nil {
		return nil, err
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil {
		return nil, fmt.Errorf("turnload: allocate response: %w", err)
	}
	c.relay = &net.UDPAddr{IP: relayed.IP, Port: relayed.Port}
	return c.relay, nil
}

// Refresh refreshes the allocation; lifetime 0 deletes it.
func (c *Client) Refresh(lifetime time.Duration) error {
	_, err := c.do(stun.MethodRefresh, lifetimeAttr(lifetime))
	return err
}

// CreatePermission installs a permission for peer's IP address.
func (c *Client) CreatePermission(peer *net.UDPAddr) error {
	_, err := c.do(stun.MethodCreatePermission, peerAddr(peer))
	return err
}

// ChannelBind binds channel number ch (0x4000–0x7FFF) to peer.
func (c *Client) ChannelBind(ch uint16, peer *net.UDPAddr) error {
	_, err := c.do(stun.MethodChannelBind, channelNumber(ch), peerAddr(peer))
	return err
}

// SendChannelData sends payload to the peer bound to ch. It does not
// allocate.
func (c *Client) SendChannelData(ch uint16, payload []byte) error {
	n := 4 + len(payload)
	padded := n
	if c.stream {
		padded = (n + 3) &^ 3 // RFC 5766 §11.5: padded to 4 over streams
	}
	b := c.wbuf[:padded]
	binary.BigEndian.PutUint16(b[0:], ch)
	binary.BigEndian.PutUint16(b[2:], uint16(len(payload)))
	copy(b[4:], payload)
	clear(b[n:])
	_, err := c.conn.Write(b)
	return err
}

// SendIndication sends payload to peer in a Send indication (RFC 5766
// §10), which needs a permission for the peer's IP but no channel.
func (c *Client) SendIndication(peer *net.UDPAddr, payload []byte) error {
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peerAddr(peer),
		dataAttr(payload), stun.Fingerprint)
	if err != nil {
		return err
	}
	_, err = c.conn.Write(m.Raw)
	return err
}

type dataAttr []byte

func (d dataAttr) AddTo(m *stun.Message) error {
	m.Add(stun.AttrData, d)
	return nil
}

// ReadChannelData waits (until deadline, zero for none) for ChannelData
// and returns its channel and payload, which is valid until the next read.
// STUN messages that arrive meanwhile are skipped.
func (c *Client) ReadChannelData(deadline time.Time) (uint16, []byte, error) {
	c.conn.SetReadDeadline(deadline)
	for {
		frame, err := c.readFrame()
		if err != nil {
			return 0, nil, err
		}
		if len(frame) >= 4 && frame[0]&0xC0 == 0x40 {
			l := int(binary.BigEndian.Uint16(frame[2:]))
			if 4+l > len(frame) {
				continue
			}
			return binary.BigEndian.Uint16(frame), frame[4 : 4+l], nil
		}
	}
}

// readFrame returns the next datagram, or the next STUN/ChannelData frame
// of the TCP stream.
func (c *Client) readFrame() ([]byte, error) {
	if !c.stream {
		n, err := c.conn.Read(c.rbuf)
		if err != nil {
			return nil, err
		}
		return c.rbuf[:n], nil
	}
	for {
		if size := frameSize(c.pend); size > 0 && size <= len(c.pend) {
			frame := c.pend[:size]
			c.pend = c.pend[size:]
			return frame, nil
		} else if size < 0 {
			return nil, errors.New("turnload: bad frame on stream")
		}
		// Move the partial frame to the front and read more.
		n := copy(c.rbuf, c.pend)
		m, err := c.conn.Read(c.rbuf[n:])
		if err != nil {
			return nil, err
		}
		c.pend = c.rbuf[:n+m]
	}
}

// frameSize is the length of the first frame in b, 0 if b is too short to
// tell, -1 if b is not a TURN frame.
func frameSize(b []byte) int {
	if len(b) < 4 {
		return 0
	}
	l := int(binary.BigEndian.Uint16(b[2:]))
	switch b[0] >> 6 {
	case 0: // STUN
		return 20 + l
	case 1: // ChannelData, padded over streams
		return (4 + l + 3) &^ 3
	}
	return -1
}

// do runs one authenticated transaction, answering the 401 challenge and
// 438 stale-nonce once each.
func (c *Client) do(method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	for try := 0; try < 3; try++ {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if c.nonce != nil {
			setters = append(setters, stun.NewUsername(c.username), stun.NewRealm(c.realm), c.nonce,
				stun.NewLongTermIntegrity(c.username, c.realm, c.password))
		}
		setters = append(setters, stun.Fingerprint)
		req, err := stun.Build(setters...)
		if err != nil {
			return nil, err
		}
		res, err := c.transact(req)
		if err != nil {
			return nil, fmt.Errorf("turn %s: %w", method, err)
		}
		if res.Type.Class == stun.ClassSuccessResponse {
			return res, nil
		}
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(res); err != nil {
			return nil, &ErrorResponse{Method: method}
		}
		if code.Code == stun.CodeUnauthorized && c.nonce == nil || code.Code == stun.CodeStaleNonce {
			var realm stun.Realm
			var nonce stun.Nonce
			if realm.GetFrom(res) == nil {
				c.realm = realm.String()
			}
			if err := nonce.GetFrom(res); err != nil {
				return nil, &ErrorResponse{Method: method, Code: code.Code, Reason: string(code.Reason)}
			}
			c.nonce = nonce
			continue
		}
		return nil, &ErrorResponse{Method: method, Code: code.Code, Reason: string(code.Reason)}
	}
	return nil, &ErrorResponse{Method: method, Code: stun.CodeUnauthorized, Reason: "challenge loop"}
}

// transact sends req and waits for the response with its transaction ID,
// retransmitting over UDP.
func (c *Client) transact(req *stun.Message) (*stun.Message, error) {
	rto := c.RTO
	tries := 4
	if c.stream {
		rto, tries = 4*c.RTO, 1
	}
	for ; tries > 0; tries-- {
		if _, err := c.conn.Write(req.Raw); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(rto)
		rto *= 2
		for {
			c.conn.SetReadDeadline(deadline)
			frame, err := c.readFrame()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil, fmt.Errorf("connection closed: %w", err)
				}
				return nil, err
			}
			if !stun.IsMessage(frame) {
				continue
			}
			res := &stun.Message{Raw: append([]byte(nil), frame...)}
			if err := res.Decode(); err != nil || res.TransactionID != req.TransactionID {
				continue
			}
			return res, nil
		}
	}
	return nil, ErrTimeout
}

type requestedTransportUDP struct{}

func (requestedTransportUDP) AddTo(m *stun.Message) error {
	m.Add(stun.AttrRequestedTransport, []byte{17, 0, 0, 0})
	return nil
}

type lifetimeAttr time.Duration

func (l lifetimeAttr) AddTo(m *stun.Message) error {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(time.Duration(l)/time.Second))
	m.Add(stun.AttrLifetime, v)
	return nil
}

type channelNumber uint16

func (ch channelNumber) AddTo(m *stun.Message) error {
	v := make([]byte, 4)
	binary.BigEndian.PutUint16(v, uint16(ch))
	m.Add(stun.AttrChannelNumber, v)
	return nil
}

func peerAddr(a *net.UDPAddr) stun.Setter {
	return addrAs{stun.XORMappedAddress{IP: a.IP, Port: a.Port}, stun.AttrXORPeerAddress}
}

type addrAs struct {
	a stun.XORMappedAddress
	t stun.AttrType
}

func (x addrAs) AddTo(m *stun.Message) error { return x.a.AddToAs(m, x.t) }

// SetCredentials changes the credentials used from the next request on.
func (c *Client) SetCredentials(username, password string) {
	c.username, c.password = username, password
}
