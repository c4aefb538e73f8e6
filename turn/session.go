package turn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	pionturn "github.com/pion/turn/v2"

	"github.com/salonhq/salon/internal/udpbatch"
	"github.com/salonhq/salon/turn/credential"
)

// A session is one pion server: one per UDP socket, one per TCP or TLS
// connection. pion/turn v2 handles a socket's requests one at a time on a
// single goroutine, and an Allocate request calls the AuthHandler and then,
// on the same goroutine, the RelayAddressGenerator. So the session
// remembers who the last authenticated request came from, and the relay
// generator knows whose allocation it is creating: that is how per-user
// allocation limits work without hooks pion does not have.
type session struct {
	srv       *Server
	transport transport
	log       *slog.Logger
	// out is the UDP socket the session answers and relays to clients on,
	// when it can send in batches (see relayConn.batch).
	out *udpbatch.Conn

	// Set by authenticate, read by allocate; both run on the session's
	// read loop, one after the other.
	pendingUser   string
	pendingClient net.Addr

	mu     sync.Mutex
	owners map[string]string // client address → user ID of its allocation

	// The channel fast path (channels.go): UDP allocations by client
	// address, and the ChannelBind request pion is answering.
	fastMu  sync.RWMutex
	fast    map[netip.AddrPort]*relayConn
	pending atomic.Pointer[pendingBind]
}

func (s *Server) newSession(t transport) *session {
	return &session{srv: s, transport: t, log: s.log.With("transport", t.String()), owners: make(map[string]string),
		fast: make(map[netip.AddrPort]*relayConn)}
}

func (ss *session) serverConfig(c net.PacketConn) pionturn.ServerConfig {
	return pionturn.ServerConfig{
		Realm:              ss.srv.cfg.Realm,
		AuthHandler:        ss.authenticate,
		LoggerFactory:      ss.srv.pionLogs,
		ChannelBindTimeout: ss.srv.chanLife,
		PacketConnConfigs: []pionturn.PacketConnConfig{{
			PacketConn:            &guardConn{PacketConn: c, ss: ss},
			RelayAddressGenerator: relayGenerator{ss},
			PermissionHandler:     ss.permit,
		}},
	}
}

// authenticate is pion's AuthHandler for TURN REST usernames
// (EXPIRY:USERID or EXPIRY:USERID/DEVICEID). pion's own
// NewLongTermAuthHandler wants a bare timestamp. It returns the long-term
// key; pion then checks MESSAGE-INTEGRITY with it, which is where a forged
// password fails. (guardConn has already refused the credentials of a
// holder no longer logged in at Allocate and Refresh.)
func (ss *session) authenticate(username, realm string, src net.Addr) ([]byte, bool) {
	principal, password, err := credential.Check(ss.srv.secret, username, time.Now())
	userID, _ := credential.SplitPrincipal(principal)
	switch {
	case errors.Is(err, credential.ErrExpired):
		ss.srv.refuse(refusalAuthExpired)
		ss.log.Debug("TURN credential expired", "client", src.String(), "username", username)
		return nil, false
	case err != nil:
		ss.srv.refuse(refusalAuthMalformed)
		ss.log.Debug("TURN username malformed", "client", src.String(), "err", err)
		return nil, false
	case realm != ss.srv.cfg.Realm:
		ss.srv.refuse(refusalAuthRealm)
		ss.log.Debug("TURN request for another realm", "client", src.String(), "realm", realm)
		return nil, false
	}
	// RFC 5766 §6.2/§7.2: requests on an allocation must use the
	// credentials it was created with; pion does not check that. Holding
	// to the user ID (not the whole username) lets a client refresh with a
	// newer credential of its own.
	key := src.String()
	ss.mu.Lock()
	owner, owned := ss.owners[key]
	ss.mu.Unlock()
	if owned && owner != userID {
		ss.srv.refuse(refusalAuthUserMismatch)
		ss.log.Debug("TURN request on another user's allocation", "client", key, "user", userID)
		return nil, false
	}
	ss.pendingUser, ss.pendingClient = userID, src
	return pionturn.GenerateAuthKey(username, realm, password), true
}

// permit is pion's PermissionHandler: may this allocation relay to peer?
func (ss *session) permit(client net.Addr, peer net.IP) bool {
	if r := ss.srv.peers.check(peer); r != refusalNone {
		ss.srv.refuse(r)
		ss.log.Debug("TURN peer refused", "client", client.String(), "peer", peer.String(), "reason", r.String())
		return false
	}
	ss.srv.counters.permissions.Add(1)
	return true
}

// relayGenerator wraps the shared port-range generator for one session.
type relayGenerator struct{ ss *session }

func (relayGenerator) Validate() error { return nil } // the shared generator is validated in New

func (g relayGenerator) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	return g.ss.allocate(network, requestedPort)
}

func (relayGenerator) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, ErrTCPRelay
}

// allocate opens a relay socket for the user whose Allocate request is
// being handled, within the user's quota.
func (ss *session) allocate(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	s := ss.srv
	user, client := ss.pendingUser, ss.pendingClient
	if user == "" || client == nil {
		return nil, nil, errors.New("turn: allocation without an authenticated request")
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, nil, ErrClosed
	case s.cfg.MaxAllocationsPerUser > 0 && s.perUser[user] >= s.cfg.MaxAllocationsPerUser:
		s.mu.Unlock()
		s.refuse(refusalUserQuota)
		ss.log.Info("TURN allocation refused: user at quota", "user", user, "quota", s.cfg.MaxAllocationsPerUser)
		return nil, nil, fmt.Errorf("%w (%s, %d)", ErrUserQuota, user, s.cfg.MaxAllocationsPerUser)
	}
	s.perUser[user]++ // held while the socket opens
	s.mu.Unlock()

	pc, addr, err := s.gen.AllocatePacketConn(network, requestedPort)
	if err != nil {
		s.mu.Lock()
		s.releaseUser(user)
		s.mu.Unlock()
		s.refuse(refusalRelayPorts)
		ss.log.Warn("TURN relay socket failed", "user", user, "err", err)
		return nil, nil, err
	}
	r := s.newRelayConn(pc, ss, user, client)
	ss.track(r)
	r.startLifetime() // before r is shared: Close reads the timer

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		r.Close() // gives the user's count back
		return nil, nil, ErrClosed
	}
	s.relays[r] = struct{}{}
	s.mu.Unlock()
	ss.mu.Lock()
	ss.owners[r.client] = user
	ss.mu.Unlock()
	s.counters.created[ss.transport].Add(1)
	ss.log.Debug("TURN allocation", "user", user, "client", r.client, "relay", addr.String())
	return r, addr, nil
}

// releaseUser gives back one of user's allocations; s.mu is held.
func (s *Server) releaseUser(user string) {
	if n := s.perUser[user]; n > 1 {
		s.perUser[user] = n - 1
	} else {
		delete(s.perUser, user)
	}
}

// forget drops the ownership record of r's client address, unless a newer
// allocation has taken it.
func (ss *session) forget(r *relayConn) {
	ss.untrack(r)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.owners[r.client] == r.user {
		delete(ss.owners, r.client)
	}
}
