package participant

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/pion/dtls/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v2"
	"github.com/pion/webrtc/v3"

	"github.com/salonhq/salon/sfu/bwe"
)

// Socket is the UDP socket the SFU's ICE mux reads and writes (the
// internal/udpbatch wrapper in production). A subscriber connection whose
// selected candidate pair runs over it has its RTP written there directly.
type Socket interface {
	WriteTo(b []byte, addr net.Addr) (int, error)
	LocalAddr() net.Addr
}

// DirectOut is the last step of a subscriber connection's RTP write path:
// once armed with the connection's SRTP keys and the subscriber's address,
// each outgoing stream encrypts its packets itself, into a buffer it
// reuses, and writes them to the SFU's socket. Until then, and whenever the
// connection runs over something else (ICE-TCP), packets take pion's own
// path (its SRTP session, the ICE connection), which allocates, locks once
// per connection and crosses the ICE mux for every packet.
//
// It is registered as the innermost interceptor, so the others (TWCC
// sequence numbers, the bandwidth estimator's send record, sender-report
// counts) still see every packet first, as before. RTCP the SFU sends
// takes pion's path; RTCP the subscriber sends is read off the socket by
// RTCPRouter once armed (directin.go). Each stream has its own SRTP context;
// pion's context never sees an RTP packet of a stream after arming, so the
// two never disagree on its rollover counter.
type DirectOut struct {
	interceptor.NoOp
	path atomic.Pointer[directPath]

	// heads are the outermost writers of the connection's streams, by
	// SSRC (see directHeads).
	headsMu sync.Mutex
	heads   map[uint32]interceptor.RTPWriter

	// armMu serializes arming and disarming: the connection-state handler
	// and the candidate-pair handler run on different goroutines, and each
	// reads the selected pair and stores the path as one step, so a slower
	// one cannot put back an address the other has already replaced.
	armMu sync.Mutex
	// keys are derived once per connection: arming again (a new candidate
	// pair) keeps every stream's context and rollover counter.
	keys *srtpKeys

	// The receiving half (directin.go): the subscriber's RTCP, taken off
	// the SFU's socket by router once armed, for the down tracks and est,
	// the connection's bandwidth estimator (NewSubscriberAPI's, once pion
	// has made it; nil without estimation).
	in     directIn
	router *RTCPRouter
	est    atomic.Pointer[bwe.Estimator]
}

// directHeads is the outermost interceptor of a subscriber connection: it
// records each stream's whole interceptor chain, so a down track can
// write into it with an attributes map it reuses; pion's own track
// writer makes a new map for every packet, which the bandwidth estimator
// then grows.
type directHeads struct{ o *DirectOut }

func (h directHeads) NewInterceptor(string) (interceptor.Interceptor, error) { return h, nil }

func (h directHeads) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	h.o.headsMu.Lock()
	if h.o.heads == nil {
		h.o.heads = map[uint32]interceptor.RTPWriter{}
	}
	h.o.heads[info.SSRC] = w
	h.o.headsMu.Unlock()
	return w
}

func (h directHeads) UnbindLocalStream(info *interceptor.StreamInfo) {
	h.o.headsMu.Lock()
	delete(h.o.heads, info.SSRC)
	h.o.headsMu.Unlock()
}

func (h directHeads) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader { return r }
func (h directHeads) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter { return w }
func (h directHeads) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	return r
}
func (h directHeads) UnbindRemoteStream(*interceptor.StreamInfo) {}
func (h directHeads) Close() error                               { return nil }

// head is the outermost writer of the stream with ssrc, nil if none.
func (o *DirectOut) head(ssrc uint32) interceptor.RTPWriter {
	if o == nil {
		return nil
	}
	o.headsMu.Lock()
	defer o.headsMu.Unlock()
	return o.heads[ssrc]
}

// directPath is where armed streams write: keys stays the same object for
// the connection's lifetime, so a new address keeps each stream's context.
type directPath struct {
	keys *srtpKeys
	sock Socket
	addr net.Addr
}

// srtpKeys are the local (outgoing) SRTP master key and salt.
type srtpKeys struct {
	profile   srtp.ProtectionProfile
	key, salt []byte
}

// NewInterceptor makes DirectOut its own factory: one per subscriber API,
// one subscriber connection per API.
func (o *DirectOut) NewInterceptor(string) (interceptor.Interceptor, error) { return o, nil }

// BindLocalStream wraps pion's writer of one outgoing stream.
func (o *DirectOut) BindLocalStream(_ *interceptor.StreamInfo, next interceptor.RTPWriter) interceptor.RTPWriter {
	return &directStream{out: o, next: next, sealed: make([]byte, 0, directBuf)}
}

// Armed reports whether streams write directly.
func (o *DirectOut) Armed() bool { return o.path.Load() != nil }

func (o *DirectOut) arm(keys *srtpKeys, sock Socket, addr net.Addr) {
	o.path.Store(&directPath{keys: keys, sock: sock, addr: addr})
}

// disarm takes both directions back to pion's path.
func (o *DirectOut) disarm() {
	o.armMu.Lock()
	o.unarmed()
	o.armMu.Unlock()
}

// unarmed is disarm with armMu held.
func (o *DirectOut) unarmed() {
	o.path.Store(nil)
	o.router.remove(o)
}

// directBuf holds the largest packet the SFU forwards plus SRTP's tag.
const directBuf = 1600

var errPacketTooLarge = errors.New("participant: RTP packet too large for the direct write path")

// directStream is one outgoing stream's writer. Its lock is contended only
// by the stream's own writers (the forwarding goroutine and NACK answers).
type directStream struct {
	out  *DirectOut
	next interceptor.RTPWriter

	mu   sync.Mutex
	keys *srtpKeys
	// gcm seals AEAD-profile packets in one pass, header as associated
	// data, into sealed; roc tracks the stream's rollover counter.
	gcm     cipher.AEAD
	gcmSalt [12]byte
	iv      [12]byte
	roc     rocTracker
	// ctx is pion's SRTP context for the other profiles (AES-CM with
	// HMAC-SHA1), which pion implements and this code does not.
	ctx    *srtp.Context
	hdr    rtp.Header // EncryptRTP's scratch, so it allocates nothing
	plain  []byte
	sealed []byte
}

// Write encrypts and sends one packet, or hands it to pion while unarmed.
func (s *directStream) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	p := s.out.path.Load()
	if p == nil {
		return s.next.Write(h, payload, a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys != p.keys {
		if err := s.setKeys(p.keys); err != nil {
			return 0, err
		}
	}
	var out []byte
	var err error
	if s.gcm != nil {
		out, err = s.sealGCM(h, payload)
	} else {
		out, err = s.sealPion(h, payload)
	}
	if err != nil {
		return 0, err
	}
	return p.sock.WriteTo(out, p.addr)
}

// sealGCM is SRTP with AEAD_AES_128_GCM or AEAD_AES_256_GCM (RFC 7714
// section 8): the header is the associated data, the payload is encrypted
// and followed by the 16-byte tag.
func (s *directStream) sealGCM(h *rtp.Header, payload []byte) ([]byte, error) {
	buf := s.sealed[:cap(s.sealed)]
	hl, err := h.MarshalTo(buf)
	if err != nil {
		return nil, err
	}
	if hl+len(payload)+s.gcm.Overhead() > len(buf) {
		return nil, errPacketTooLarge
	}
	// RFC 7714 section 8.1: the IV is 00 00 || SSRC || ROC || SEQ, XORed
	// with the session salt.
	roc := s.roc.next(h.SequenceNumber)
	s.iv = [12]byte{}
	binary.BigEndian.PutUint32(s.iv[2:], h.SSRC)
	binary.BigEndian.PutUint32(s.iv[6:], roc)
	binary.BigEndian.PutUint16(s.iv[10:], h.SequenceNumber)
	for i := range s.iv {
		s.iv[i] ^= s.gcmSalt[i]
	}
	ct := s.gcm.Seal(buf[hl:hl], s.iv[:], payload, buf[:hl])
	return buf[:hl+len(ct)], nil
}

// sealPion encrypts with pion's context, from a marshalled copy.
func (s *directStream) sealPion(h *rtp.Header, payload []byte) ([]byte, error) {
	hl, err := h.MarshalTo(s.plain)
	if err != nil {
		return nil, err
	}
	if hl+len(payload) > len(s.plain) {
		return nil, errPacketTooLarge
	}
	n := hl + copy(s.plain[hl:], payload)
	out, err := s.ctx.EncryptRTP(s.sealed[:0], s.plain[:n], &s.hdr)
	if err != nil {
		return nil, err
	}
	if cap(out) > cap(s.sealed) {
		s.sealed = out[:0]
	}
	return out, nil
}

// setKeys derives the stream's session keys from the master key and salt.
func (s *directStream) setKeys(k *srtpKeys) error {
	s.gcm, s.ctx = nil, nil
	switch k.profile {
	case srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAeadAes256Gcm:
		key, err := srtpKDF(0x00, k.key, k.salt, len(k.key))
		if err != nil {
			return err
		}
		salt, err := srtpKDF(0x02, k.key, k.salt, len(k.salt))
		if err != nil {
			return err
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		if s.gcm, err = cipher.NewGCM(block); err != nil {
			return err
		}
		if len(salt) != len(s.gcmSalt) {
			return errNoDTLSState
		}
		copy(s.gcmSalt[:], salt)
	default:
		ctx, err := srtp.CreateContext(k.key, k.salt, k.profile)
		if err != nil {
			return err
		}
		s.ctx = ctx
		if s.plain == nil {
			s.plain = make([]byte, directBuf)
		}
	}
	s.keys = k
	s.roc = rocTracker{}
	return nil
}

// srtpKDF is SRTP's key derivation with a key derivation rate of 0 (RFC
// 3711 section 4.3.1 and 4.3.3; RFC 7714 section 11 uses it unchanged):
// the master salt XOR the label at byte 7, shifted left 16 bits, is the
// initial AES counter; the keystream is the session key or salt.
func srtpKDF(label byte, masterKey, masterSalt []byte, n int) ([]byte, error) {
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, err
	}
	var in [16]byte
	copy(in[:14], masterSalt)
	in[7] ^= label
	out := make([]byte, (n+15)/16*16)
	for i := 0; i*16 < n; i++ {
		binary.BigEndian.PutUint16(in[14:], uint16(i))
		block.Encrypt(out[i*16:], in[:])
	}
	return out[:n], nil
}

// rocTracker is a sender's rollover counter (RFC 3711 section 3.3.1): it
// counts wraps of the sequence number, and gives an older packet sent
// again (a NACK answer from before a wrap) the counter it had.
type rocTracker struct {
	started bool
	highest uint16
	roc     uint32
}

func (r *rocTracker) next(seq uint16) uint32 {
	if !r.started {
		r.started, r.highest = true, seq
		return r.roc
	}
	if int16(seq-r.highest) > 0 {
		if seq < r.highest {
			r.roc++
		}
		r.highest = seq
		return r.roc
	}
	if seq > r.highest && r.roc > 0 {
		return r.roc - 1
	}
	return r.roc
}

// armDirect points the subscriber connection's streams at the SFU socket
// when its selected candidate pair is UDP on that socket, and back at
// pion's path otherwise; with router, the subscriber's RTCP from that
// pair's address is read off the socket too. Called when the connection
// connects and when its selected pair changes.
func armDirect(out *DirectOut, sock Socket, router *RTCPRouter, pc *webrtc.PeerConnection) {
	if out == nil || sock == nil {
		return
	}
	out.armMu.Lock()
	defer out.armMu.Unlock()
	dt := pc.SCTP().Transport()
	addr := directAddr(dt.ICETransport(), sock)
	if addr == nil {
		out.unarmed()
		return
	}
	if out.keys == nil {
		local, remote, err := dtlsSRTPKeys(dt)
		if err != nil {
			out.unarmed()
			return
		}
		out.keys = local
		if router != nil && out.setRemoteKeys(remote) == nil {
			out.router = router
		}
	}
	out.arm(out.keys, sock, addr)
	out.router.set(out, addr)
}

// directAddr is the subscriber's address when the selected pair is UDP on
// sock's port; nil otherwise.
func directAddr(ice *webrtc.ICETransport, sock Socket) net.Addr {
	pair, err := ice.GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return nil
	}
	la, ok := sock.LocalAddr().(*net.UDPAddr)
	if !ok || pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Remote.Protocol != webrtc.ICEProtocolUDP ||
		pair.Local.Typ == webrtc.ICECandidateTypeRelay || int(pair.Local.Port) != la.Port {
		return nil
	}
	ip := net.ParseIP(pair.Remote.Address)
	if ip == nil {
		return nil
	}
	if v4 := ip.To4(); v4 != nil && la.IP.To4() != nil {
		ip = v4
	}
	return &net.UDPAddr{IP: ip, Port: int(pair.Remote.Port)}
}

var (
	errNoDTLSState = errors.New("participant: DTLS transport state not readable")
	dtlsConnType   = reflect.TypeOf((*dtls.Conn)(nil))
	profileType    = reflect.TypeOf(srtp.ProtectionProfile(0))
	dtlsParamsType = reflect.TypeOf(webrtc.DTLSParameters{})
)

// dtlsSRTPKeys derives the connection's SRTP master keys and salts, its
// own (outgoing) and the peer's, from its DTLS session (RFC 5764 section 4.2), as pion's own SRTP session
// does. pion/webrtc v3 does not export the DTLS connection, the chosen
// protection profile or the remote role, so they are read from its
// transport's fields; if the fields are not what this code expects (another
// pion version), the error leaves the connection on pion's path.
func dtlsSRTPKeys(dt *webrtc.DTLSTransport) (local, remote *srtpKeys, err error) {
	// State takes the transport's lock: what Start wrote before it
	// reported connected is visible after this.
	if dt.State() != webrtc.DTLSTransportStateConnected {
		return nil, nil, errNoDTLSState
	}
	v := reflect.ValueOf(dt).Elem()
	cf, pf, rf := v.FieldByName("conn"), v.FieldByName("srtpProtectionProfile"), v.FieldByName("remoteParameters")
	if !cf.IsValid() || !pf.IsValid() || !rf.IsValid() || cf.Type() != dtlsConnType || pf.Type() != profileType || rf.Type() != dtlsParamsType {
		return nil, nil, errNoDTLSState
	}
	conn := *(**dtls.Conn)(unsafe.Pointer(cf.UnsafeAddr()))
	profile := *(*srtp.ProtectionProfile)(unsafe.Pointer(pf.UnsafeAddr()))
	params := *(*webrtc.DTLSParameters)(unsafe.Pointer(rf.UnsafeAddr()))
	if conn == nil || profile == 0 {
		return nil, nil, errNoDTLSState
	}
	// pion's DTLSTransport.role, with no answering role set in the
	// SettingEngine (the SFU sets none).
	var client bool
	switch params.Role {
	case webrtc.DTLSRoleClient:
		client = false
	case webrtc.DTLSRoleServer:
		client = true
	default:
		client = dt.ICETransport().Role() != webrtc.ICERoleControlling
	}
	state := conn.ConnectionState()
	cfg := srtp.Config{Profile: profile}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, client); err != nil {
		return nil, nil, err
	}
	return &srtpKeys{profile: profile, key: cfg.Keys.LocalMasterKey, salt: cfg.Keys.LocalMasterSalt},
		&srtpKeys{profile: profile, key: cfg.Keys.RemoteMasterKey, salt: cfg.Keys.RemoteMasterSalt}, nil
}
