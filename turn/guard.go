package turn

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/pion/stun"

	"github.com/salonhq/salon/turn/credential"
)

// Holders says whether the holder of a credential may still use the relay.
// The homeserver answers it (cmd/salon wires it to accounts and devices);
// the relay asks at Allocate and at Refresh, so that a credential outlives
// neither a logout nor a deactivation: new allocations are refused (401)
// and existing ones are not refreshed, so they end within their lifetime.
type Holders interface {
	// Live reports whether userID's account is active and, when deviceID
	// is not empty, whether that device is still logged in. An error is
	// the homeserver's failure: the request is refused.
	Live(ctx context.Context, userID, deviceID string) (bool, error)
}

// holdersTimeout bounds one Live call: it runs on a listener's read loop.
const holdersTimeout = 2 * time.Second

// live asks Holders about a credential's principal (credential.Principal).
// A principal that names no Matrix user (an SFU participant's identity) is
// live: only the server mints those.
func (s *Server) live(principal string) bool {
	if s.holders == nil {
		return true
	}
	user, device := credential.SplitPrincipal(principal)
	if !strings.HasPrefix(user, "@") {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), holdersTimeout)
	defer cancel()
	ok, err := s.holders.Live(ctx, user, device)
	if err != nil {
		s.log.Warn("TURN: cannot ask whether a credential's holder is still logged in; refused", "user", user, "err", err)
		return false
	}
	return ok
}

// ownAddrs are the relay's own listen addresses: the listeners' ports on
// the relay IP, the address relay sockets bind to and the listeners'
// addresses. A client relaying to them would make the relay a TURN client
// of itself, with the server's own address as its source (a loop, and a
// way around limits kept per client address), so they are refused as
// peers whatever allow_peers says. Ports matter: the embedded SFU shares
// the relay's public IP and TURN to it must work; so must relayed
// addresses of other allocations (client → TURN → TURN → client, when
// both ends relay through this server, as coturn and Synapse's TURN guide
// keep working), which an allocation only forwards from peers its own
// client gave a permission.
type ownAddrs struct {
	ips   []netip.Addr
	ports []uint16 // listen ports
}

// newOwnAddrs collects them from the configuration and the listeners'
// addresses (nil when not known yet). A wildcard bind stands for every
// address of the host's interfaces.
func newOwnAddrs(cfg Config, listeners ...net.Addr) *ownAddrs {
	o := &ownAddrs{}
	wildcard := false
	addIP := func(ip netip.Addr) {
		ip = ip.Unmap().WithZone("")
		if ip.IsUnspecified() {
			wildcard = true
			return
		}
		if ip.IsValid() && !slices.Contains(o.ips, ip) {
			o.ips = append(o.ips, ip)
		}
	}
	for _, s := range []string{cfg.RelayIP, cfg.RelayBind} {
		if ip, err := netip.ParseAddr(s); err == nil {
			addIP(ip)
		}
	}
	for _, l := range listeners {
		if l == nil {
			continue
		}
		ap, err := netip.ParseAddrPort(l.String())
		if err != nil {
			continue
		}
		addIP(ap.Addr())
		if !slices.Contains(o.ports, ap.Port()) {
			o.ports = append(o.ports, ap.Port())
		}
	}
	if wildcard {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					addIP(p.Addr())
				}
			}
		}
	}
	return o
}

// isOwn reports whether ap is one of the relay's own listen addresses. It
// does not allocate or lock: the relay asks for every packet a client
// sends.
func (s *Server) isOwn(ap netip.AddrPort) bool {
	own := s.own.Load()
	return own != nil && slices.Contains(own.ports, ap.Port()) && slices.Contains(own.ips, ap.Addr().Unmap().WithZone(""))
}

// peerRefusal is why relaying to peer is refused, or refusalNone: the
// relay's own addresses first, then the peer policy.
func (s *Server) peerRefusal(peer netip.AddrPort) refusal {
	if s.isOwn(peer) {
		return refusalPeerSelf
	}
	return s.peers.checkAddr(peer.Addr())
}

// ownPeer reports whether addr (a relayed packet's destination) is one of
// the relay's own addresses.
func (s *Server) ownPeer(addr net.Addr) bool {
	ua, ok := addr.(*net.UDPAddr)
	return ok && s.isOwn(ua.AddrPort())
}

// guardConn is a listener's socket as pion reads it; it answers some
// requests itself before pion sees them (see session.screen).
type guardConn struct {
	net.PacketConn
	ss *session
}

// WriteTo is pion answering or relaying to a client; the channel fast
// path learns bindings from the answers.
func (g *guardConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	g.ss.sent(b, addr)
	return g.PacketConn.WriteTo(b, addr)
}

func (g *guardConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := g.PacketConn.ReadFrom(p)
		if err != nil || !g.ss.screen(p[:n], addr, g.PacketConn) {
			return n, addr, err
		}
	}
}

const (
	stunMagicCookie = 0x2112A442
	stunHeaderSize  = 20
)

// screen looks at a packet before pion does and answers two kinds of
// authenticated request itself; it returns true when it has (pion must
// not see the packet).
//
//   - A CreatePermission or ChannelBind for a refused peer gets 403
//     (Forbidden), as RFC 8656 §9.1 and §12.1 want: pion/turn v2 answers
//     the first with an error response that carries no ERROR-CODE, and the
//     second with 401, which sends clients back to authenticate. Refusing
//     the whole request also keeps pion from installing the permissions
//     listed before a refused peer. pion's PermissionHandler
//     (session.permit) still refuses the same peers by IP, should a
//     request get past this.
//   - An Allocate or Refresh whose credential's holder is no longer logged
//     in (Holders) gets 401 (Unauthorized): pion's AuthHandler can only
//     make it answer 400.
//
// Anything else, and any request that does not authenticate, is pion's to
// answer (401 challenge, 400, 438).
func (ss *session) screen(pkt []byte, from net.Addr, conn net.PacketConn) bool {
	// ChannelData and anything else that is not a STUN request passes
	// untouched (RFC 5389 §6: the top two bits are zero, then the cookie).
	if len(pkt) < stunHeaderSize || pkt[0]&0xc0 != 0 || binary.BigEndian.Uint32(pkt[4:8]) != stunMagicCookie {
		return false
	}
	var t stun.MessageType
	t.ReadValue(binary.BigEndian.Uint16(pkt[0:2]))
	if t.Class != stun.ClassRequest {
		return false
	}
	switch t.Method {
	case stun.MethodCreatePermission, stun.MethodChannelBind:
		m := &stun.Message{Raw: append([]byte(nil), pkt...)}
		if m.Decode() != nil {
			return false
		}
		if ss.screenPeers(m, pkt, t, from, conn) {
			return true
		}
		if t.Method == stun.MethodChannelBind && ss.transport == transportUDP {
			ss.noteChannelBind(m, from)
		}
	case stun.MethodAllocate, stun.MethodRefresh:
		if ss.srv.holders != nil {
			return ss.screenHolder(pkt, t, from, conn)
		}
	}
	return false
}

// decodeAuthenticated decodes a request and checks its long-term
// credential: the principal and key, or ok false.
func (ss *session) decodeAuthenticated(pkt []byte) (m *stun.Message, principal string, key stun.MessageIntegrity, ok bool) {
	m = &stun.Message{Raw: append([]byte(nil), pkt...)}
	if m.Decode() != nil || !m.Contains(stun.AttrMessageIntegrity) {
		return nil, "", nil, false
	}
	var username stun.Username
	var realm stun.Realm
	if username.GetFrom(m) != nil || realm.GetFrom(m) != nil || realm.String() != ss.srv.cfg.Realm {
		return nil, "", nil, false
	}
	principal, password, err := credential.Check(ss.srv.secret, username.String(), time.Now())
	if err != nil {
		return nil, "", nil, false
	}
	key = stun.NewLongTermIntegrity(username.String(), realm.String(), password)
	if key.Check(m) != nil {
		return nil, "", nil, false
	}
	return m, principal, key, true
}

// screenPeers refuses a CreatePermission or ChannelBind (m, decoded from
// pkt) naming a refused peer.
func (ss *session) screenPeers(m *stun.Message, pkt []byte, t stun.MessageType, from net.Addr, conn net.PacketConn) bool {
	reason := refusalNone
	var peer netip.AddrPort
	_ = m.ForEach(stun.AttrXORPeerAddress, func(m *stun.Message) error {
		ap, ok := peerAddress(m)
		if !ok {
			return nil // pion answers 400
		}
		if r := ss.srv.peerRefusal(ap); r != refusalNone && reason == refusalNone {
			reason, peer = r, ap
		}
		return nil
	})
	if reason == refusalNone {
		return false
	}
	m, _, key, ok := ss.decodeAuthenticated(pkt)
	if !ok {
		return false
	}
	res, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.NewType(t.Method, stun.ClassErrorResponse),
		stun.CodeForbidden, key, stun.Fingerprint)
	if err != nil {
		return false
	}
	ss.srv.refuse(reason)
	ss.log.Debug("TURN peer refused", "client", from.String(), "peer", peer.String(), "reason", reason.String(),
		"method", t.Method.String())
	_, _ = conn.WriteTo(res.Raw, from)
	return true
}

func (ss *session) screenHolder(pkt []byte, t stun.MessageType, from net.Addr, conn net.PacketConn) bool {
	m, principal, _, ok := ss.decodeAuthenticated(pkt)
	if !ok || deallocation(m) || ss.srv.live(principal) {
		return false
	}
	// RFC 5389 §10.2.2: a 401 carries REALM and NONCE, not
	// MESSAGE-INTEGRITY. The nonce is the request's own (pion issued it);
	// whatever the client does with it, its credential stays refused.
	var nonce stun.Nonce
	if nonce.GetFrom(m) != nil {
		return false
	}
	res, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.NewType(t.Method, stun.ClassErrorResponse),
		stun.CodeUnauthorized, stun.NewRealm(ss.srv.cfg.Realm), nonce, stun.Fingerprint)
	if err != nil {
		return false
	}
	user, _ := credential.SplitPrincipal(principal)
	ss.srv.refuse(refusalRevoked)
	ss.log.Debug("TURN credential of a logged-out device or deactivated account refused", "client", from.String(),
		"user", user, "method", t.Method.String())
	_, _ = conn.WriteTo(res.Raw, from)
	return true
}

// peerAddress is the XOR-PEER-ADDRESS m is at (the first, or the one
// ForEach is visiting).
func peerAddress(m *stun.Message) (netip.AddrPort, bool) {
	var a stun.XORMappedAddress
	if a.GetFromAs(m, stun.AttrXORPeerAddress) != nil {
		return netip.AddrPort{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, uint16(a.Port)), true
}

// deallocation: a Refresh with LIFETIME 0 deletes the allocation (RFC 5766
// §7.2), which even a logged-out device may do.
func deallocation(m *stun.Message) bool {
	if m.Type.Method != stun.MethodRefresh {
		return false
	}
	v, err := m.Get(stun.AttrLifetime)
	return err == nil && len(v) == 4 && binary.BigEndian.Uint32(v) == 0
}
