// Package homeserver is Salon's Matrix homeserver: New builds it from its
// configuration and storage, Handler serves the Client-Server API, Run runs
// its background work until the context ends.
package homeserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	stdsync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/clientapi"
	"github.com/salonhq/salon/homeserver/delayed"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/federation"
	"github.com/salonhq/salon/homeserver/identity"
	"github.com/salonhq/salon/homeserver/identity/ldap"
	"github.com/salonhq/salon/homeserver/keys"
	"github.com/salonhq/salon/homeserver/media"
	"github.com/salonhq/salon/homeserver/pushgateway"
	"github.com/salonhq/salon/homeserver/pushrules"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/route"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/postgres"
	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/homeserver/sync"
	"github.com/salonhq/salon/homeserver/userdata"
	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/internal/redact"
)

// Deps are the homeserver's dependencies, made by the caller.
type Deps struct {
	Store      store.Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	SigningKey events.SigningKey
	// Listen is the address the HTTP server listens on; public URLs default
	// to it.
	Listen string
	// WellKnown adds members to /.well-known/matrix/client.
	WellKnown func() map[string]any
	// TURN hands out relay credentials for /voip/turnServer (nil: none).
	TURN TURNCredentials
	// LiveKitServiceURL is the MatrixRTC JWT service advertised as the
	// call focus ("" when calls are off).
	LiveKitServiceURL string
	// DataDir holds media/ (uploaded content and thumbnails).
	DataDir string
	// CallGrants hears, from Run's goroutines, of rooms whose call
	// permissions may have changed (power levels, teaching mode,
	// membership); nil: nobody listens.
	CallGrants CallGrantsListener
	// RTCDelegation takes MatrixRTC delayed leaves over for the embedded
	// SFU (MSC4195); nil: not offered.
	RTCDelegation RTCDelegation
}

// RTCDelegation takes a member's delayed leave over; see
// clientapi.RTCDelegation.
type RTCDelegation = clientapi.RTCDelegation

// CallGrantsListener hears of rooms whose call permissions may have
// changed; see rooms.CallGrantsListener.
type CallGrantsListener = rooms.CallGrantsListener

// TURNAnswer is what /voip/turnServer returns.
type TURNAnswer = clientapi.TURNAnswer

// TURNCredentials makes TURN credentials for a user.
type TURNCredentials = func(userID, deviceID string) (TURNAnswer, bool)

// Homeserver is the running Matrix server.
type Homeserver struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	Auth  *auth.Service
	api   *clientapi.API
	Rooms *rooms.Service
	Push  *pushrules.Service
	// PushGateway sends notifications to users' HTTP pushers.
	PushGateway *pushgateway.Sender
	// Delayed runs MSC4140 delayed events.
	Delayed *delayed.Scheduler
	// Media is the media repository.
	Media *media.Repo
	// Sync answers /sync; Notifier wakes its long-polls after writes.
	Sync     *sync.Engine
	Notifier *sync.Notifier
	Typing   *sync.Typing
	// Presence is nil when presence.enabled is false.
	Presence *sync.Presence
	// LDAP is nil unless ldap.url is set.
	LDAP *ldap.Service
	// Keys is end-to-end encryption: keys, to-device, device lists.
	Keys *keys.Service
	// UserData keeps account data, tags and receipts.
	UserData *userdata.Service
	// SSO is single sign-on (nil when no identity provider is configured).
	SSO *identity.Flow
	// Federation is the Server-Server API (its keys are served even when
	// federation.enabled is off).
	Federation *federation.Service

	cleanupEvery time.Duration
}

// New builds a homeserver. cfg must have passed Validate.
func New(cfg Config, deps Deps) (*Homeserver, error) {
	if deps.Store == nil {
		return nil, errors.New("homeserver: no store")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Homeserver{cfg: cfg, deps: deps, log: deps.Logger, cleanupEvery: 30 * time.Second}
	h.Auth = auth.New(auth.Params{
		Store: deps.Store, ServerName: cfg.ServerName, Logger: deps.Logger.With("component", "auth"),
		MinPasswordLength:              cfg.Passwords.MinLength,
		RefreshableAccessTokenLifetime: cfg.Sessions.RefreshableAccessTokenLifetime,
		DevicesDeleted: func(ctx context.Context, userID string, ids []string) {
			if h.Keys != nil {
				h.Keys.DevicesDeleted(ctx, userID, ids)
			}
		},
	})
	h.Notifier = sync.NewNotifier()
	h.Typing = sync.NewTyping(h.Notifier)
	if cfg.Presence.Enabled {
		h.Presence = sync.NewPresence(h.Notifier)
	}
	pushing := &pushingNotifier{Notifier: h.Notifier}
	h.Rooms = rooms.New(rooms.Params{
		Store: deps.Store, ServerName: cfg.ServerName, Key: deps.SigningKey,
		Notifier: pushing, Logger: deps.Logger.With("component", "rooms"),
		InheritSpacePowerLevels: cfg.Spaces.InheritPowerLevels == "on",
		EncryptByDefault:        cfg.Encryption.Default,
		CallGrants:              deps.CallGrants,
		EventStored: func(ctx context.Context, roomID, eventID string, content json.RawMessage) {
			if h.Media == nil {
				return
			}
			// The event is stored: its index is written even if the
			// request that sent it goes away.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := h.Media.EventStored(ctx, roomID, eventID, content); err != nil {
				h.log.Warn("index media references", "room", roomID, "event", eventID, "err", err)
			}
		},
		UserExists: func(ctx context.Context, userID string) bool {
			lp, ok := h.Auth.Localpart(userID)
			if !ok {
				return false
			}
			acc, err := deps.Store.Account(ctx, lp)
			if errors.Is(err, store.ErrNotFound) && h.LDAP != nil {
				// Someone in the directory who has not signed in yet: the
				// invite waits for their first sign-in.
				return h.LDAP.Known(ctx, userID)
			}
			return err == nil && !acc.Deactivated
		},
	})
	if cfg.LDAP.Enabled() {
		l, err := ldap.New(ldap.Params{
			Config: cfg.LDAP, Store: deps.Store, Auth: h.Auth, Rooms: h.Rooms, Logger: deps.Logger.With("component", "ldap"),
			ProfileChanged: func(ctx context.Context, userID string, p store.Profile) {
				h.Rooms.UpdateProfile(ctx, userID, p.DisplayName, p.AvatarURL)
			},
		})
		if err != nil {
			_ = h.Close()
			return nil, fmt.Errorf("ldap: %w", err)
		}
		h.LDAP = l
		h.Auth.SetPasswordDelegate(l)
	}
	h.Delayed = delayed.New(delayed.Params{
		Store: deps.Store, Rooms: h.Rooms, MaxDelay: cfg.MatrixRTC.MaxDelay, PerUser: cfg.MatrixRTC.MaxDelayedPerUser,
		Logger: deps.Logger.With("component", "delayed"),
	})
	h.UserData = userdata.New(userdata.Params{Store: deps.Store, Notifier: h.Notifier, Rooms: h.Rooms, ReceiptShared: h.receiptOut})
	h.Push = pushrules.New(deps.Store, h.Rooms)
	h.Push.Notify = func(pos int64, userID string) { h.Notifier.Notify(pos, "", []string{userID}) }
	h.PushGateway = pushgateway.New(pushgateway.Params{
		Store: deps.Store, Rules: h.Push, Version: h.Rooms.Version,
		AllowPrivate: cfg.Push.AllowPrivateGateways, Logger: deps.Logger.With("component", "pushgateway"),
	})
	pushing.gateway = h.PushGateway
	engine, err := sync.New(context.Background(), sync.Params{
		Store: deps.Store, Notifier: h.Notifier, Typing: h.Typing, Logger: deps.Logger.With("component", "sync"),
		Counts: h.Push.Counts, ThreadCounts: h.threadCounts, Visibility: h.visibility, Presence: h.Presence,
		PushRules: func(ctx context.Context, userID string) (json.RawMessage, error) {
			rs, err := h.Push.Rules(ctx, userID)
			if err != nil {
				return nil, err
			}
			return json.Marshal(map[string]any{"global": rs})
		},
		JoinedMembers: func(ctx context.Context, roomID string) ([]string, error) {
			return h.Rooms.Members(ctx, roomID, "join")
		},
	})
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("sync: %w", err)
	}
	h.Sync = engine
	h.Keys = keys.New(keys.Params{
		Store: deps.Store, ServerName: cfg.ServerName, Notifier: h.Notifier,
		RoomMates: engine.RoomMates, Logger: deps.Logger.With("component", "keys"),
		DeviceChanged: h.deviceOut,
	})
	fedRooms := federationRooms{rooms: h.Rooms, store: deps.Store, serverName: cfg.ServerName}
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	h.Federation, err = federation.New(fctx, federation.Params{
		Config: cfg.Federation, ServerName: cfg.ServerName, Key: deps.SigningKey, Store: deps.Store,
		Keys: h.Keys, EDUs: federationEDUs{h}, Rooms: fedRooms, Directory: federationDirectory{h.Rooms}, Residents: fedRooms, Logger: deps.Logger.With("component", "federation"),
		Registerer: deps.Registerer, PDUs: h.Rooms, Host: roomHost{h.Rooms},
	})
	fcancel()
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("federation: %w", err)
	}
	if h.Federation.Enabled() {
		h.Keys.SetRemote(h.Federation)
		h.Rooms.SetRemote(remoteRooms{h.Federation})
	}
	if h.SSO, err = h.newSSO(cfg, deps); err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("sso: %w", err)
	}
	// Other servers' directories and spaces, when federation is on.
	var remotePublicRooms func(context.Context, string, rooms.PublicRoomsQuery) (json.RawMessage, error)
	var remoteHierarchy func(context.Context, string, string, bool) (json.RawMessage, error)
	if h.Federation.Enabled() {
		remotePublicRooms, remoteHierarchy = h.remotePublicRooms, h.Federation.Hierarchy
	}
	var proxies []netip.Prefix
	for _, p := range cfg.HTTP.TrustedProxies {
		proxies = append(proxies, netip.MustParsePrefix(p))
	}
	h.api = clientapi.New(clientapi.Params{
		Config: clientapi.Config{
			ServerName:        cfg.ServerName,
			BaseURL:           cfg.BaseURL(deps.Listen),
			RegistrationMode:  cfg.Registration.Mode,
			RegistrationToken: cfg.Registration.Token,
			MaxRequestBytes:   cfg.HTTP.MaxRequestBytes,
			TrustedProxies:    proxies,
			LoginPerIP:        cfg.RateLimits.LoginPerIP,
			LoginPerAccount:   cfg.RateLimits.LoginPerAccount,
			RegisterPerIP:     cfg.RateLimits.RegisterPerIP,
			MessagesPerUser:   cfg.RateLimits.MessagesPerUser,
			LiveKitServiceURL: deps.LiveKitServiceURL,
		},
		Delayed:    h.Delayed,
		Keys:       h.Keys,
		KeyChanges: engine,
		Sync:       syncAPI{h},
		UserData:   h.UserData,
		Rooms:      h.Rooms,
		TURN:       deps.TURN,
		PushRules:  h.Push,

		RTCDelegation: deps.RTCDelegation,
		Deactivated: func(ctx context.Context, userID string) {
			if err := h.Rooms.LeaveAll(ctx, userID); err != nil {
				h.log.Warn("deactivated user leaving rooms", "user", userID, "err", err)
			}
		},
		ProfileChanged: func(ctx context.Context, userID string, p store.Profile) {
			h.Rooms.UpdateProfile(ctx, userID, p.DisplayName, p.AvatarURL)
		},
		Directory: h.userDirectory(),
		// GET /notifications evaluates push rules as unread counts do.
		Notifications: h.Push,

		Auth:       h.Auth,
		Store:      deps.Store,
		Logger:     deps.Logger.With("component", "clientapi"),
		Registerer: deps.Registerer,
		ServerKeys: func() ([]byte, error) { return h.Federation.ServerKeys(context.Background()) },
		RemoteProfile: func(ctx context.Context, userID, field string) (store.Profile, error) {
			return h.Federation.Profile(ctx, userID, field)
		},
		RemoteAlias:       h.Federation.Directory,
		RemotePublicRooms: remotePublicRooms,
		RemoteHierarchy:   remoteHierarchy,
		WellKnown:         deps.WellKnown,
		KeyBackups:        keys.NewBackups(deps.Store),
	})
	if h.SSO != nil {
		h.api.SetSSO(ssoAPI{h.SSO})
	}
	var remoteMedia media.Remote
	if h.Federation.Enabled() {
		remoteMedia = federationMedia{h.Federation}
	}
	m, err := media.New(media.Params{
		Config: cfg.Media, ServerName: cfg.ServerName, DataDir: deps.DataDir, Store: deps.Store,
		Auth: mediaAuth{h.Auth}, Logger: deps.Logger.With("component", "media"), Registerer: deps.Registerer,
		ClientIP: h.api.ClientIP,
		Events:   mediaEvents{h},
		Remote:   remoteMedia,
	})
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("media: %w", err)
	}
	h.Media = m
	h.Federation.SetMedia(m)
	if cfg.HTTP.AccessLog != "off" {
		access := deps.Logger.With("component", "http")
		h.api.SetAccessLog(access)
		m.SetAccessLog(access)
		h.Federation.SetAccessLog(access)
	}
	return h, nil
}

// Handler serves the Client-Server API, the media repository and the
// server key endpoint.
func (h *Homeserver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h.api.Handler())
	mh := h.Media.Handler()
	mux.Handle("/_matrix/media/", mh)
	mux.Handle("/_matrix/client/v1/media/", mh)
	// The Server-Server API on the client listener (federation.listen
	// empty: TLS ends at the reverse proxy); OpenID userinfo stays with
	// the client API, which issues the tokens.
	fh := h.Federation.Handler()
	mux.Handle("/_matrix/key/", fh)
	mux.Handle("/_matrix/federation/", fh)
	mux.Handle("/_matrix/federation/v1/openid/", h.api.Handler())
	if h.SSO != nil {
		mux.Handle(identity.PathPrefix, h.SSO.Handler())
	}
	return mux
}

// Routes lists the paths and methods of the Client-Server API and the
// media repository that Handler serves (SSO paths not included).
func (h *Homeserver) Routes() []route.Route {
	return append(h.api.Routes(), h.Media.Routes()...)
}

// visibility gives the sync engine the read rules of a user in a room; a
// room the user can read nothing of yields a reader that denies all.
// threadCounts gives /sync the push rules' unread counts split by thread.
func (h *Homeserver) threadCounts(ctx context.Context, userID, roomID string) (sync.UnreadCounts, map[string]sync.UnreadCounts, error) {
	main, threads, err := h.Push.ThreadedCounts(ctx, userID, roomID)
	if err != nil {
		return sync.UnreadCounts{}, nil, err
	}
	var out map[string]sync.UnreadCounts
	for root, c := range threads {
		if out == nil {
			out = map[string]sync.UnreadCounts{}
		}
		out[root] = sync.UnreadCounts{NotificationCount: c.Notifications, HighlightCount: c.Highlights}
	}
	return sync.UnreadCounts{NotificationCount: main.Notifications, HighlightCount: main.Highlights}, out, nil
}

func (h *Homeserver) visibility(ctx context.Context, userID, roomID string) (sync.Visibility, error) {
	rd, err := h.Rooms.NewReader(ctx, roomID, userID)
	var me *mxerr.Error
	if errors.As(err, &me) && me.Code == mxerr.Forbidden {
		return denyAll{}, nil
	}
	if err != nil {
		return nil, err
	}
	return rd, nil
}

type denyAll struct{}

func (denyAll) CanRead(store.EventRow) bool   { return false }
func (denyAll) SeesKnock(store.EventRow) bool { return false }

// syncAPI is what the Client-Server API's sync-related endpoints call.
type syncAPI struct{ h *Homeserver }

func (s syncAPI) Sync(ctx context.Context, req sync.Request) (*sync.Response, error) {
	return s.h.Sync.Sync(ctx, req)
}

// SlidingSync is simplified sliding sync (MSC4186).
func (s syncAPI) SlidingSync(ctx context.Context, req sync.SlidingRequest) (*sync.SlidingResponse, error) {
	return s.h.Sync.SlidingSync(ctx, req)
}
func (s syncAPI) SetTyping(roomID, userID string, typing bool, timeout time.Duration, members []string) {
	s.h.Typing.Set(roomID, userID, typing, timeout, members)
	s.h.typingOut(roomID, userID, typing)
}

// SetPresence is PUT /presence: ignored when presence is off.
func (s syncAPI) SetPresence(userID, state, msg string) {
	if s.h.Presence != nil {
		s.h.Presence.Set(userID, state, msg)
		s.h.presenceOut(userID, state, msg)
	}
}

// PresenceStatus is GET /presence: offline for everyone when presence is
// off.
func (s syncAPI) PresenceStatus(userID string) sync.PresenceStatus {
	if s.h.Presence == nil {
		return sync.PresenceStatus{Presence: sync.PresenceOffline}
	}
	st, _ := s.h.Presence.Status(userID)
	return st
}

func (s syncAPI) SyncStarted(userID, deviceID, setPresence string) func() {
	if s.h.Presence == nil {
		return func() {}
	}
	return s.h.Presence.SyncStarted(userID, deviceID, setPresence)
}

func (s syncAPI) SharesRoom(ctx context.Context, user, other string) (bool, error) {
	return s.h.Sync.SharesRoom(ctx, user, other)
}

func (s syncAPI) PresenceActive(userID string) {
	if s.h.Presence != nil {
		s.h.Presence.Active(userID)
	}
}

// userDirectory gives the user directory search the LDAP directory's
// people (nil without LDAP).
func (h *Homeserver) userDirectory() clientapi.UserDirectory {
	if h.LDAP == nil {
		return nil
	}
	return ldapDirectory{h.LDAP}
}

type ldapDirectory struct{ l *ldap.Service }

func (d ldapDirectory) SearchUsers(ctx context.Context, term string, limit int) ([]clientapi.DirectoryUser, error) {
	found, err := d.l.SearchUsers(ctx, term, limit)
	out := make([]clientapi.DirectoryUser, 0, len(found))
	for _, u := range found {
		out = append(out, clientapi.DirectoryUser{UserID: u.UserID, DisplayName: u.DisplayName})
	}
	return out, err
}

// mediaAuth gives the media repository the user of an access token.
type mediaAuth struct{ a *auth.Service }

func (m mediaAuth) Authenticate(ctx context.Context, token redact.Secret, ip string) (string, error) {
	dev, err := m.a.Authenticate(ctx, token, ip)
	if err != nil {
		return "", err
	}
	return dev.UserID, nil
}

// mediaEvents tells the media repository (media.restrict_to_rooms)
// whether a user may see an event, by the rooms' own read rules.
type mediaEvents struct{ h *Homeserver }

func (m mediaEvents) VisibleEvent(ctx context.Context, userID, roomID, eventID string) (json.RawMessage, bool, error) {
	hidden := func(err error) bool {
		var me *mxerr.Error
		return errors.As(err, &me) && (me.Code == mxerr.Forbidden || me.Code == mxerr.NotFound)
	}
	content := func(row store.EventRow) (json.RawMessage, bool, error) {
		var ev struct {
			Content json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(row.JSON, &ev); err != nil {
			return nil, false, err
		}
		return ev.Content, true, nil
	}
	row, _, err := m.h.Rooms.Event(ctx, userID, roomID, eventID)
	if err == nil {
		return content(row)
	}
	if !hidden(err) {
		return nil, false, err
	}
	// The room's state is shown to its members whatever the history
	// visibility: an avatar set before they joined is theirs to see.
	if row, err = m.h.deps.Store.Event(ctx, eventID); err != nil || row.StateKey == nil || row.RoomID != roomID {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
		return nil, false, nil
	}
	state, _, err := m.h.Rooms.State(ctx, userID, roomID)
	if hidden(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	for _, s := range state {
		if s.EventID == eventID {
			return content(s)
		}
	}
	return nil, false, nil
}

// Drain ends the /sync long-polls in flight: call it when shutdown
// begins (http.Server.RegisterOnShutdown).
func (h *Homeserver) Drain() { h.api.Drain() }

// Close stops the homeserver's timers (typing expiry, presence idle
// timeout).
func (h *Homeserver) Close() error {
	if h.Federation != nil {
		_ = h.Federation.Close()
	}
	if h.Presence != nil {
		_ = h.Presence.Close()
	}
	return h.Typing.Close()
}

// Run runs background work until ctx ends: delayed events, notifications
// to push gateways, call-grant changes to Deps.CallGrants, and making deactivated accounts leave their
// rooms (also those deactivated by `salon user deactivate`, which cannot
// write room events itself while the server runs). It returns once all of
// it has stopped.
func (h *Homeserver) Run(ctx context.Context) error {
	var wg stdsync.WaitGroup
	if h.LDAP != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = h.LDAP.Run(ctx)
		}()
	}
	wg.Add(5)
	go func() {
		defer wg.Done()
		_ = h.Federation.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		_ = h.Delayed.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		_ = h.PushGateway.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		h.SSO.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		_ = h.Rooms.Run(ctx)
	}()
	defer wg.Wait()
	t := time.NewTicker(h.cleanupEvery)
	defer t.Stop()
	for {
		h.leaveDeactivated(ctx)
		if err := h.Keys.ExpireTxns(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("expire to-device transaction IDs", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// LeaveDeactivated makes every deactivated account still in a room leave
// it now (Run does it every 30 seconds).
func (h *Homeserver) LeaveDeactivated(ctx context.Context) { h.leaveDeactivated(ctx) }

func (h *Homeserver) leaveDeactivated(ctx context.Context) {
	users, err := h.deps.Store.DeactivatedMembers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("list deactivated members", "err", err)
		}
		return
	}
	for _, u := range users {
		if err := h.Rooms.LeaveAll(ctx, u); err != nil {
			h.log.Warn("deactivated user leaving rooms", "user", u, "err", err)
		} else {
			h.log.Info("deactivated user left their rooms", "user", u)
		}
	}
}

// OpenStore opens the database named by a --database value: "sqlite:PATH"
// (relative paths are inside dataDir) or a postgres:// URL.
func OpenStore(ctx context.Context, database, dataDir, sqliteSync string) (store.Store, error) {
	switch {
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		return postgres.Open(ctx, database)
	case strings.HasPrefix(database, "sqlite:"):
		path := strings.TrimPrefix(database, "sqlite:")
		if !filepath.IsAbs(path) {
			path = filepath.Join(dataDir, path)
		}
		return sqlite.Open(ctx, path, sqlite.Options{Synchronous: sqliteSync})
	}
	return nil, fmt.Errorf("database %q must be sqlite:PATH or a postgres:// URL", database)
}
