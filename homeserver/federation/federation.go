// Package federation is Salon's half of the Matrix Server-Server API: the
// server's signing keys and the keyring of other servers' keys, server
// discovery, signed requests out and their verification in, the queries
// other servers ask (profile, directory, devices, end-to-end keys), and
// transactions both ways through a persistent per-destination queue.
//
// It must not import clientapi or sync. It reaches the rest of the
// homeserver through the small interfaces it declares (EDUSink, Local),
// and reports nothing upward otherwise. Rooms will accept remote PDUs
// through the same authorization rules as local events; until then a PDU
// in a transaction is answered with a per-PDU error (docs/FEDERATION.md).
//
// Spec: Server-Server API v1.16 (matrix-org/matrix-spec
// data/api/server-server/ and content/server-server-api.md).
package federation

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/keys"
	"github.com/salonhq/salon/homeserver/route"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Version is what /_matrix/federation/v1/version reports.
const Version = "0.1.0"

// EDUSink takes the ephemeral events other servers send. The origin has
// been checked to be the server of userID.
type EDUSink interface {
	// Typing sets a remote user's typing state in a room.
	Typing(ctx context.Context, roomID, userID string, typing bool) error
	// Receipt records a remote user's read receipt.
	Receipt(ctx context.Context, roomID, userID, receiptType, eventID, threadID string, ts int64) error
	// DeviceListUpdate says a remote user's devices changed (deviceID
	// "" with deleted false: their cross-signing keys changed).
	DeviceListUpdate(ctx context.Context, userID, deviceID string, deleted bool) error
	// Presence records a remote user's presence (last_active_ago in ms).
	Presence(ctx context.Context, userID, presence, statusMsg string, lastActiveAgo int64) error
}

// PDUReceiver takes the PDUs of inbound transactions: rooms.Service
// implements it (hashes, signatures through the Keyring, auth rules,
// state resolution); nil answers every PDU with an error of its own. A returned *mxerr.Error (or any error) becomes that
// PDU's entry in the transaction's answer; it never fails the transaction.
type PDUReceiver interface {
	ReceivePDU(ctx context.Context, origin string, pdu json.RawMessage) (eventID string, err error)
}

// Params configure a Service.
type Params struct {
	Config     Config
	ServerName string
	Key        events.SigningKey
	Store      store.Store
	// Keys answers /user/keys/query, /user/keys/claim and /user/devices
	// and delivers inbound to-device messages.
	Keys *keys.Service
	// EDUs takes typing, receipts and device-list updates (nil: dropped).
	EDUs EDUSink
	// PDUs takes inbound PDUs (nil: not accepted yet).
	PDUs PDUReceiver
	// Rooms answers other servers' reads of rooms (nil: refused).
	Rooms RoomReader
	// Directory answers /publicRooms and /hierarchy (nil: 404).
	Directory RoomDirectory
	// Residents says where outbound EDUs go (nil: nowhere).
	Residents Residents
	// Host answers make_join, send_join, make_leave, send_leave, invite,
	// make_knock and send_knock; nil: those are 404.
	Host       RoomHost
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Roots overrides the CA pool of outbound connections (tests); nil:
	// Config.CAFile or the system roots.
	Roots *x509.CertPool
	Now   func() time.Time
}

// Service is the Server-Server API of one homeserver.
type Service struct {
	p       Params
	enabled bool
	log     *slog.Logger
	policy  Policy
	own     *ownKeys
	// Keyring verifies other servers' signatures.
	Keyring *Keyring
	// Client makes signed requests to other servers.
	Client *Client
	queue  *Queue
	m      *metrics

	access *slog.Logger

	// streams numbers outbound device-list updates.
	streams deviceStreams

	// media answers other servers' media requests (SetMedia); roots and
	// loc fetch the Location of remote media.
	media   MediaServer
	roots   *x509.CertPool
	locOnce sync.Once
	loc     *http.Client

	// inbound serialises transactions per origin, so a replay waits for
	// the first to be answered.
	inboundMu sync.Mutex
	inbound   map[string]*sync.Mutex
}

// New builds the Service and records the signing key as this server's
// current key (a changed key becomes an old_verify_key).
func New(ctx context.Context, p Params) (*Service, error) {
	if p.Key.Public() == nil {
		return nil, errors.New("federation: no signing key")
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Config.KeyValidity == 0 {
		p.Config.KeyValidity = Defaults().KeyValidity
	}
	roots := p.Roots
	if roots == nil && p.Config.CAFile != "" {
		var err error
		if roots, err = loadCAs(p.Config.CAFile); err != nil {
			return nil, err
		}
	}
	s := &Service{p: p, enabled: p.Config.On(p.ServerName), log: p.Logger, m: newMetrics(p.Registerer),
		policy: NewPolicy(p.Config.Allow, p.Config.Deny)}
	s.roots = roots
	s.own = &ownKeys{name: p.ServerName, key: p.Key, store: p.Store, validity: p.Config.KeyValidity, now: p.Now}
	if err := s.own.record(ctx); err != nil {
		return nil, err
	}
	resolver := &Resolver{Overrides: p.Config.Resolve}
	s.Client = newClient(p.ServerName, p.Key, resolver, s.policy, roots, p.Config.dialAllowed(), s.m)
	s.Keyring = &Keyring{self: p.ServerName, own: s.own, store: p.Store, client: s.Client,
		notaries: p.Config.Notaries, now: p.Now, log: p.Logger, metrics: s.m}
	s.queue = newQueue(p.Store, s.Client, p.ServerName, p.Logger, s.m, p.Now)
	return s, nil
}

// Enabled reports whether the Server-Server API is on.
func (s *Service) Enabled() bool { return s.enabled }

// ServerKeys is the signed answer of /_matrix/key/v2/server.
func (s *Service) ServerKeys(ctx context.Context) ([]byte, error) { return s.own.json(ctx) }

// Run sends queued transactions until ctx ends (nothing when federation
// is off). It returns once every sender has stopped.
func (s *Service) Run(ctx context.Context) error {
	if !s.enabled {
		<-ctx.Done()
		return nil
	}
	return s.queue.Run(ctx)
}

// Close drops idle outbound connections.
func (s *Service) Close() error {
	s.Client.Close()
	s.locOnce.Do(func() {}) // none made after this
	if s.loc != nil {
		s.loc.CloseIdleConnections()
	}
	return nil
}

// SetAccessLog logs a line per inbound request (route, status, duration,
// origin) to l; call it before Handler.
func (s *Service) SetAccessLog(l *slog.Logger) { s.access = l }

// Handler serves /_matrix/key/v2/ always and /_matrix/federation/ when
// federation is on; other paths are M_UNRECOGNIZED.
func (s *Service) Handler() http.Handler {
	rt := route.New(s.log, s.m.requests, s.m.duration)
	if s.access != nil {
		rt.SetAccessLog(s.access)
	}
	get := func(h route.HandlerFunc) route.Methods { return route.Methods{http.MethodGet: h} }
	rt.Handle("/_matrix/key/v2/server", get(s.serveServerKeys))
	rt.Handle("/_matrix/key/v2/server/{keyId}", get(s.serveServerKeys))
	if s.enabled {
		rt.Handle("/_matrix/key/v2/query", route.Methods{http.MethodPost: s.serveKeyQuery})
		rt.Handle("/_matrix/key/v2/query/{serverName}", get(s.serveKeyQuery))
		rt.Handle("/_matrix/federation/v1/version", get(s.serveVersion))
		rt.Handle("/_matrix/federation/v1/query/profile", get(s.authed(s.queryProfile)))
		rt.Handle("/_matrix/federation/v1/query/directory", get(s.authed(s.queryDirectory)))
		rt.Handle("/_matrix/federation/v1/user/devices/{userId}", get(s.authed(s.userDevices)))
		rt.Handle("/_matrix/federation/v1/user/keys/query", route.Methods{http.MethodPost: s.authed(s.userKeysQuery)})
		rt.Handle("/_matrix/federation/v1/user/keys/claim", route.Methods{http.MethodPost: s.authed(s.userKeysClaim)})
		rt.Handle("/_matrix/federation/v1/send/{txnId}", route.Methods{http.MethodPut: s.authed(s.send)})
		s.roomReadRoutes(rt, get)
		s.directoryRoutes(rt)
		s.mediaRoutes(rt, get)
		s.membershipRoutes(rt, get)
	}
	return rt
}

func (s *Service) serveVersion(w http.ResponseWriter, r *http.Request) error {
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"server": map[string]string{"name": "Salon", "version": Version}})
	return nil
}

func (s *Service) serveServerKeys(w http.ResponseWriter, r *http.Request) error {
	b, err := s.own.json(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return nil
}
