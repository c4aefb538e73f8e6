// Package clientapi serves the Matrix Client-Server API: it decodes
// requests, calls the homeserver's components and encodes their answers.
// It holds no state of its own and never touches storage backends.
package clientapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/keys"
	"github.com/salonhq/salon/homeserver/push"
	"github.com/salonhq/salon/homeserver/ratelimit"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/route"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/internal/redact"
)

// Config is what the Client-Server API needs to know of the homeserver's
// configuration.
type Config struct {
	ServerName        string
	BaseURL           string
	RegistrationMode  string // open, token, closed
	RegistrationToken redact.Secret
	MaxRequestBytes   int64
	TrustedProxies    []netip.Prefix
	LoginPerIP        ratelimit.Rule
	LoginPerAccount   ratelimit.Rule
	RegisterPerIP     ratelimit.Rule
	MessagesPerUser   ratelimit.Rule
	// LiveKitServiceURL is the MatrixRTC JWT service clients are sent to
	// ("" when calls are off).
	LiveKitServiceURL string
}

// Params are the API's dependencies.
type Params struct {
	Config     Config
	Auth       *auth.Service
	Store      Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// ServerKeys answers GET /_matrix/key/v2/server with signed JSON.
	ServerKeys func() ([]byte, error)
	// RemoteProfile looks up the profile of another server's user over
	// federation (field "" for both); nil: other servers' users are
	// M_NOT_FOUND.
	RemoteProfile func(ctx context.Context, userID, field string) (store.Profile, error)
	// RemoteAlias resolves another server's room alias over federation
	// (room ID and servers); nil: such aliases are looked up locally
	// and not found.
	RemoteAlias func(ctx context.Context, alias string) (string, []string, error)
	// RemotePublicRooms asks another server for a page of its public room
	// directory over federation (nil: ?server= naming another server is
	// refused).
	RemotePublicRooms func(ctx context.Context, server string, q rooms.PublicRoomsQuery) (json.RawMessage, error)
	// RemoteHierarchy asks another server for a space's /hierarchy over
	// federation (nil: spaces of other servers are not looked up).
	RemoteHierarchy func(ctx context.Context, server, roomID string, suggestedOnly bool) (json.RawMessage, error)
	// WellKnown adds members to /.well-known/matrix/client (MatrixRTC foci).
	WellKnown func() map[string]any
	// Deactivated is called after a user deactivates their account.
	Deactivated func(ctx context.Context, userID string)
	// ProfileChanged is called after a user changes their profile.
	ProfileChanged ProfileListener
	// Rooms is the rooms authority (nil: no room endpoints).
	Rooms *rooms.Service
	// Sync answers /sync, typing and presence.
	Sync SyncService
	// UserData keeps account data, tags and receipts, and wakes /sync
	// after each write (nil: none of those endpoints).
	UserData UserData
	// Delayed schedules MSC4140 delayed events (nil: not supported).
	Delayed Delayed
	// KeyBackups keeps server-side key backups (nil: no /room_keys).
	KeyBackups *keys.Backups
	// PushRules keeps users' push rules (nil: no push rule endpoints).
	PushRules PushRules
	// Notifications lists what notified a user (nil: no /notifications).
	Notifications NotificationLister
	// TURN makes relay credentials for /voip/turnServer (nil: no relay).
	TURN func(userID, deviceID string) (TURNAnswer, bool)
	// Directory adds people from an outside directory (LDAP) to the user
	// directory search (nil: none).
	Directory UserDirectory
	// Keys is end-to-end encryption (nil: no key or to-device endpoints);
	// KeyChanges answers /keys/changes.
	Keys       *keys.Service
	KeyChanges KeyChanges
	// SSO is single sign-on (nil: none).
	SSO SSO
	// RTCDelegation takes delayed leaves over for the SFU (MSC4195; nil:
	// not offered).
	RTCDelegation RTCDelegation
}

// Store is the storage the API reads and writes itself: accounts,
// profiles, devices, pushers, filters, aliases and the room directory, and
// a few reads of rooms. What /sync shows (events, account data, receipts,
// keys) is written by the services that wake it, never from here.
type Store interface {
	Account(ctx context.Context, localpart string) (store.Account, error)
	Profile(ctx context.Context, userID string) (store.Profile, error)
	SetDisplayName(ctx context.Context, userID, name string) error
	SetAvatarURL(ctx context.Context, userID, url string) error
	Device(ctx context.Context, userID, deviceID string) (store.Device, error)
	Devices(ctx context.Context, userID string) ([]store.Device, error)
	SetDeviceName(ctx context.Context, userID, deviceID, name string) error
	Pushers(ctx context.Context, userID string) ([]store.Pusher, error)
	SetPusher(ctx context.Context, p store.Pusher, keepOthers bool) error
	DeletePusher(ctx context.Context, userID, appID, pushKey string) error
	Filter(ctx context.Context, userID, filterID string) ([]byte, error)
	PutFilter(ctx context.Context, userID string, filter []byte) (string, error)
	Alias(ctx context.Context, alias string) (roomID, creator string, err error)
	CreateAlias(ctx context.Context, alias, roomID, creator string) error
	RoomAliases(ctx context.Context, roomID string) ([]string, error)
	PublishedRooms(ctx context.Context) ([]string, error)
	SetPublished(ctx context.Context, roomID string, published bool) error
	Room(ctx context.Context, roomID string) (store.Room, error)
	StateHistory(ctx context.Context, roomID, typ, stateKey string) ([]store.EventRow, error)
	WithThreads(ctx context.Context, roomID string, eventIDs []string) ([]string, error)
	CurrentPos() int64
}

// UserDirectory finds people in an outside directory who may not have
// signed in yet, as the Matrix IDs they have or will have.
type UserDirectory interface {
	SearchUsers(ctx context.Context, term string, limit int) ([]DirectoryUser, error)
}

// DirectoryUser is one person an outside directory found.
type DirectoryUser struct {
	UserID      string
	DisplayName string
}

// PushRules is what the push rule endpoints call.
type PushRules interface {
	Rules(ctx context.Context, userID string) (push.Ruleset, error)
	Update(ctx context.Context, userID string, change func(*push.Overrides) error) error
}

// TURNAnswer is the body of /voip/turnServer.
type TURNAnswer struct {
	Username string
	Password string
	URIs     []string
	TTL      time.Duration
}

// API is the Client-Server API handler.
type API struct {
	p      Params
	log    *slog.Logger
	router *route.Router

	loginIP, loginAccount, registerIP, sendLimit *ratelimit.Limiter
	// unauthenticated MSC4140 actions, per delay ID and per address
	delayIDLimit, delayIPLimit *ratelimit.Limiter

	// drainCtx is cancelled when the server shuts down.
	drainCtx context.Context
	drain    context.CancelFunc

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	filters filterCache // parsed /sync filters
}

// New builds the API and registers its routes and metrics.
func New(p Params) *API {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{
		p:            p,
		log:          p.Logger,
		loginIP:      ratelimit.New(p.Config.LoginPerIP, nil),
		loginAccount: ratelimit.New(p.Config.LoginPerAccount, nil),
		registerIP:   ratelimit.New(p.Config.RegisterPerIP, nil),
		sendLimit:    ratelimit.New(p.Config.MessagesPerUser, nil),
		delayIDLimit: ratelimit.New(ratelimit.Rule{PerSecond: delayActPerID, Burst: delayActIDBurst}, nil),
		delayIPLimit: ratelimit.New(ratelimit.Rule{PerSecond: delayActPerIP, Burst: delayActIPBurst}, nil),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "salon_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "salon_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern (long-polls included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30},
		}, []string{"route"}),
	}
	a.router = route.New(p.Logger, a.requests, a.duration)
	a.drainCtx, a.drain = context.WithCancel(context.Background())
	if p.Registerer != nil {
		p.Registerer.MustRegister(a.requests, a.duration)
	}
	a.routes()
	return a
}

// handlerFunc is a handler that reports failure by returning an error,
// which the router writes as a Matrix error.
type handlerFunc = route.HandlerFunc

// authedFunc is a handler for a request with a valid access token.
type authedFunc func(w http.ResponseWriter, r *http.Request, dev store.Device) error

// methods maps HTTP methods to handlers for one path.
type methods = route.Methods

// handle registers path for the given methods (see route.Router.Handle); a /v3 path is also served under the r0 prefix
// with the same handlers, as Synapse still does: clients written before
// Matrix 1.1 (matrix-nio <= 0.20, matrix-commander, Hydrogen, weechat-matrix)
// call only r0, and /versions advertises r0.6.1.
func (a *API) handle(path string, ms methods) {
	a.router.Handle(path, ms)
	if rest, ok := strings.CutPrefix(path, v3+"/"); ok {
		a.router.Handle(r0+"/"+rest, ms)
	}
}

// authed wraps h so it runs only with a valid access token.
func (a *API) authed(h authedFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		dev, err := a.p.Auth.Authenticate(r.Context(), route.AccessToken(r), a.clientIP(r))
		if err != nil {
			return err
		}
		route.SetUser(r, dev.UserID)
		if a.p.Sync != nil {
			// Any request keeps an online user from going idle.
			a.p.Sync.PresenceActive(dev.UserID)
		}
		return h(w, r, dev)
	}
}

// clientIP is the caller's address, believing X-Forwarded-For only from a
// trusted proxy.
func (a *API) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	trusted := false
	for _, p := range a.p.Config.TrustedProxies {
		if p.Contains(addr.Unmap()) {
			trusted = true
			break
		}
	}
	if !trusted {
		return addr.Unmap().String()
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		// The last address is the one our trusted proxy saw.
		parts := strings.Split(xff, ",")
		if a, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1])); err == nil {
			return a.Unmap().String()
		}
	}
	return addr.Unmap().String()
}

// SetAccessLog turns the access log on (nil: off); see route.SetAccessLog.
func (a *API) SetAccessLog(l *slog.Logger) { a.router.SetAccessLog(l) }

// Handler is the whole API with CORS and the unknown-endpoint answer.
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route.CORS(w.Header())
		a.router.ServeHTTP(w, r)
	})
}

// Routes lists the API's paths and methods (see route.Router.Routes).
func (a *API) Routes() []route.Route { return a.router.Routes() }

// reply writes v as JSON with status 200.
func reply(w http.ResponseWriter, v any) error {
	mxerr.WriteJSON(w, http.StatusOK, v)
	return nil
}

// empty is the {} most endpoints answer.
var empty = struct{}{}

func rateLimited(wait time.Duration) error { return mxerr.RateLimited(wait.Milliseconds()) }

func nowMS() int64 { return time.Now().UnixMilli() }

// ClientIP is the caller's address as the API sees it (X-Forwarded-For
// believed only from trusted proxies).
func (a *API) ClientIP(r *http.Request) string { return a.clientIP(r) }
