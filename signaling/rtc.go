package signaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/sfu"
)

// KeyProvider gives the secret of a LiveKit API key; the JWT service's key
// set implements it.
type KeyProvider interface {
	Secret(apiKey string) (string, bool)
}

// Permission is a participant's grant as the homeserver decides it.
type Permission struct {
	CanPublish bool
	// CanPublishSources limits what may be published (camera, microphone,
	// screen share, screen share audio); empty allows every source.
	CanPublishSources []livekit.TrackSource
	CanSubscribe      bool
	CanPublishData    bool
}

// RTCParams configures the LiveKit signalling endpoint.
type RTCParams struct {
	SFU  *sfu.SFU
	Keys KeyProvider
	// ICEServers returns the STUN/TURN servers a participant is told
	// about (Salon's TURN with fresh credentials); nil for none. It gets
	// the participant's identity and the name its token gave it (the
	// Matrix user, for tokens of the JWT service).
	ICEServers func(identity, name string) []*livekit.ICEServer
	// Logger is narrowed here with component=rtc; nil discards.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// PingTimeout is how long a connection may stay silent before it is
	// dropped; default: the SFU's sfu.ping_timeout (what clients are told).
	PingTimeout time.Duration
	// TokenRefresh is how often, at most, a connected client is sent a
	// fresh access token (same identity and room, its current grant, the
	// original token's lifetime), so that it can resume or rejoin after
	// the one it joined with has expired; default 5 minutes, like
	// LiveKit. A token valid for less than twice that is refreshed at half
	// its lifetime, well before it expires.
	TokenRefresh time.Duration
	// Authority is the homeserver's word on who may be in a Matrix room's
	// call. With it, a token that names a Matrix user (a name starting
	// with "@", as every token of the JWT service has) connects, resumes
	// and passes /rtc/validate only while that user is joined to the
	// token's Matrix room (MatrixRoomAttribute; for tokens without it, the
	// joined room whose LegacySlotID call the token is for), and joins
	// with the grant the room gives now; RoomChanged asks it again for the
	// participants already in. A token naming no Matrix user can only be
	// made with the SFU's keys by their holder (`salon loadtest`), never
	// by the JWT service: it is admitted on its signature alone. Nil: every
	// valid token is admitted and RoomChanged does nothing.
	Authority CallPolicy
}

// RTC serves the LiveKit client protocol's signal WebSocket (/rtc) and its
// companion /rtc/validate. Mount it under a prefix with
// http.StripPrefix; the client URL is then ws(s)://HOST/PREFIX.
type RTC struct {
	p        RTCParams
	log      *slog.Logger
	upgrader websocket.Upgrader
	metrics  *rtcMetrics

	mu     sync.Mutex
	conns  map[*rtcConn]struct{}
	closed bool
	active sync.WaitGroup
	// roomChanges counts RoomChanged calls: a join that saw it move while
	// it was admitted asks the Authority again, so that a leave between
	// the check and the session's start is not missed.
	roomChanges atomic.Uint64
}

// NewRTC returns the signalling endpoint.
func NewRTC(p RTCParams) *RTC {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.PingTimeout <= 0 && p.SFU != nil {
		p.PingTimeout = p.SFU.PingTimeout()
	}
	if p.PingTimeout <= 0 {
		p.PingTimeout = 15 * time.Second
	}
	if p.TokenRefresh <= 0 {
		p.TokenRefresh = 5 * time.Minute
	}
	return &RTC{
		p:   p,
		log: p.Logger.With("component", "rtc"),
		upgrader: websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			// Any origin: Element Call and other web clients are hosted
			// elsewhere; the access token is the credential.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		metrics: newRTCMetrics(p.Registerer),
		conns:   map[*rtcConn]struct{}{},
	}
}

// Handler serves /rtc and /rtc/validate (two peer connections per
// participant, the join's settings in the query) and /rtc/v1 and
// /rtc/v1/validate (one peer connection, the settings in a join_request
// parameter; see joinrequest.go).
func (r *RTC) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/rtc", func(w http.ResponseWriter, req *http.Request) { r.serveRTC(w, req, false) })
	mux.HandleFunc("/rtc/validate", func(w http.ResponseWriter, req *http.Request) { r.serveValidate(w, req, false) })
	mux.HandleFunc("/rtc/v1", func(w http.ResponseWriter, req *http.Request) { r.serveRTC(w, req, true) })
	mux.HandleFunc("/rtc/v1/validate", func(w http.ResponseWriter, req *http.Request) { r.serveValidate(w, req, true) })
	return mux
}

// UpdatePermissions changes a connected participant's grant without a
// rejoin. It reports whether the participant was found.
func (r *RTC) UpdatePermissions(room, identity string, p Permission) bool {
	return r.p.SFU.UpdatePermissions(room, identity, sfu.Permission{
		CanPublish:        p.CanPublish,
		CanPublishSources: p.CanPublishSources,
		CanSubscribe:      p.CanSubscribe,
		CanPublishData:    p.CanPublishData,
	})
}

// Close tells every connected client the server is going away and closes
// the connections, waiting for their handlers. Hook it to
// http.Server.RegisterOnShutdown: Shutdown does not wait for hijacked
// connections.
func (r *RTC) Close() {
	r.mu.Lock()
	r.closed = true
	conns := make([]*rtcConn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		c.SendSignal(&livekit.SignalResponse{Message: &livekit.SignalResponse_Leave{Leave: &livekit.LeaveRequest{
			CanReconnect: true, Reason: livekit.DisconnectReason_SERVER_SHUTDOWN, Action: livekit.LeaveRequest_RECONNECT,
		}}})
		c.CloseSignal("server shutting down")
	}
	r.active.Wait()
}

// joinClaims is a verified access token.
type joinClaims struct {
	apiKey     string
	validFor   time.Duration
	grant      auth.VideoGrant
	room       string
	identity   string
	name       string
	metadata   string
	attributes map[string]string
	permission sfu.Permission
}

// authError is a refusal with the HTTP status /rtc/validate answers.
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

func refuse(status int, format string, args ...any) error {
	return &authError{status: status, msg: fmt.Sprintf(format, args...)}
}

// verify checks the access token (signature with the key's secret,
// expiry, join grant, room) as LiveKit's server does.
func (r *RTC) verify(req *http.Request) (*joinClaims, error) {
	token := req.URL.Query().Get("access_token")
	if h := req.Header.Get("Authorization"); h != "" {
		// The scheme is case-insensitive (RFC 9110 section 11.1).
		scheme, t, ok := strings.Cut(strings.TrimSpace(h), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, refuse(http.StatusUnauthorized, "invalid authorization header: must start with Bearer")
		}
		token = strings.TrimSpace(t)
	}
	if token == "" {
		return nil, refuse(http.StatusUnauthorized, "missing access token")
	}
	v, err := auth.ParseAPIToken(token)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "invalid token: not a JWT")
	}
	secret, ok := r.p.Keys.Secret(v.APIKey())
	if !ok || secret == "" {
		return nil, refuse(http.StatusUnauthorized, "invalid API key: %s", v.APIKey())
	}
	registered, grants, err := v.Verify(secret)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "invalid token: %v", err)
	}
	if grants.Video == nil || !grants.Video.RoomJoin || grants.Video.Room == "" {
		return nil, refuse(http.StatusUnauthorized, "permissions denied: the token does not grant joining a room")
	}
	if q := req.URL.Query().Get("room"); q != "" && q != grants.Video.Room {
		return nil, refuse(http.StatusUnauthorized, "permissions denied: the token is for another room")
	}
	if grants.Identity == "" {
		return nil, refuse(http.StatusBadRequest, "participant identity cannot be empty")
	}
	vg := grants.Video
	perm := sfu.Permission{
		CanPublish:        vg.GetCanPublish(),
		CanSubscribe:      vg.GetCanSubscribe(),
		CanPublishData:    vg.GetCanPublishData(),
		CanUpdateMetadata: vg.GetCanUpdateOwnMetadata(),
		Hidden:            vg.Hidden,
	}
	if len(vg.CanPublishSources) > 0 {
		perm.CanPublishSources = vg.GetCanPublishSources()
	}
	validFor := time.Hour
	if registered != nil && registered.ExpiresAt != nil {
		from := registered.IssuedAt
		if from == nil {
			from = registered.NotBefore
		}
		if from != nil && registered.ExpiresAt.Sub(from.Time) > 0 {
			validFor = registered.ExpiresAt.Sub(from.Time)
		}
	}
	return &joinClaims{
		apiKey:     v.APIKey(),
		validFor:   validFor,
		grant:      *vg,
		room:       vg.Room,
		identity:   grants.Identity,
		name:       grants.Name,
		metadata:   grants.Metadata,
		attributes: grants.Attributes,
		permission: perm,
	}, nil
}

// check verifies the request and whether the call admits it: the
// token, the token's Matrix user's membership now (admit), and for a
// join the call's capacity.
func (r *RTC) check(req *http.Request, reconnect bool) (*joinClaims, error) {
	claims, err := r.verify(req)
	if err != nil {
		return nil, err
	}
	if err := r.admit(req.Context(), claims); err != nil {
		return nil, err
	}
	if reconnect {
		return claims, nil
	}
	if err := r.p.SFU.CheckJoin(claims.room, claims.identity); err != nil {
		if errors.Is(err, sfu.ErrRoomFull) {
			return nil, refuse(http.StatusForbidden, "%v", err)
		}
		return nil, refuse(http.StatusServiceUnavailable, "%v", err)
	}
	return claims, nil
}

// matrixUser reports whether a token's name is a Matrix user ID: the JWT
// service names every token after its user.
func matrixUser(name string) bool { return strings.HasPrefix(name, "@") }

// admit asks the Authority whether the token's Matrix user is joined to
// the token's Matrix room now, and sets the claims' grant to what the room
// allows now (as RoomChanged would). A LiveKit server checks only the
// token; here a member who left or was kicked after getting one is
// refused: 403, LiveKit's "permissions denied".
func (r *RTC) admit(ctx context.Context, c *joinClaims) error {
	if r.p.Authority == nil || !matrixUser(c.name) {
		return nil
	}
	matrixRoom := c.attributes[MatrixRoomAttribute]
	if matrixRoom == "" {
		// A token from before the attribute: the call of the legacy slot
		// of one of the user's rooms.
		rooms, err := r.p.Authority.JoinedRooms(ctx, c.name)
		if err != nil {
			return fmt.Errorf("joined rooms of %s: %w", c.name, err)
		}
		for _, id := range rooms {
			if LiveKitRoomAlias(id, LegacySlotID) == c.room {
				matrixRoom = id
				break
			}
		}
		if matrixRoom == "" {
			return r.notJoined(c, "")
		}
	}
	perms, err := r.p.Authority.CallPermissions(ctx, c.name, matrixRoom)
	if err != nil {
		return fmt.Errorf("call permissions of %s in %s: %w", c.name, matrixRoom, err)
	}
	if !perms.Joined {
		return r.notJoined(c, matrixRoom)
	}
	c.permission = livePermission(c.permission, perms)
	c.grant.RoomAdmin = perms.Moderate
	return nil
}

func (r *RTC) notJoined(c *joinClaims, matrixRoom string) error {
	// Debug: a former member can retry its old token until it expires.
	r.log.Debug("call connection refused: not joined to the Matrix room", "user", c.name, "matrix_room", matrixRoom,
		"room", c.room, "identity", c.identity)
	return refuse(http.StatusForbidden, "permissions denied: not joined to the call's Matrix room")
}

// serveValidate answers what livekit-client asks after a failed connect:
// 200 "success", or the status and reason /rtc refused it with.
func (r *RTC) serveValidate(w http.ResponseWriter, req *http.Request, v1 bool) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	jp, err := readJoinParams(req, v1)
	if err != nil {
		r.writeRefusal(w, err)
		return
	}
	if _, err := r.check(req, jp.reconnect); err != nil {
		r.writeRefusal(w, err)
		return
	}
	_, _ = w.Write([]byte("success"))
}

func (r *RTC) writeRefusal(w http.ResponseWriter, err error) {
	var ae *authError
	if errors.As(err, &ae) {
		r.metrics.refused(ae.status)
		http.Error(w, ae.msg, ae.status)
		return
	}
	r.log.Error("rtc request failed", "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func (r *RTC) serveRTC(w http.ResponseWriter, req *http.Request, v1 bool) {
	if !websocket.IsWebSocketUpgrade(req) {
		http.Error(w, "the signal endpoint speaks WebSocket", http.StatusNotFound)
		return
	}
	jp, err := readJoinParams(req, v1)
	if err != nil {
		r.writeRefusal(w, err)
		return
	}
	changes := r.roomChanges.Load()
	claims, err := r.check(req, jp.reconnect)
	if err != nil {
		r.writeRefusal(w, err)
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	r.active.Add(1)
	r.mu.Unlock()
	defer r.active.Done()

	ws, err := r.upgrader.Upgrade(w, req, nil)
	if err != nil {
		return // the upgrader answered
	}
	log := r.log.With("room", claims.room, "identity", claims.identity)
	c := newRTCConn(ws, log, r.metrics)
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}()
	c.start()
	defer c.wait()
	reading := true
	stopReading := func() {
		if reading {
			reading = false
			c.finishReading(time.Second)
		}
	}
	defer stopReading()

	var ice []*livekit.ICEServer
	if r.p.ICEServers != nil {
		ice = r.p.ICEServers(claims.identity, claims.name)
	}
	var sess *sfu.Session
	if jp.reconnect {
		sess, err = r.p.SFU.Resume(claims.room, claims.identity, jp.sid, c, ice)
		if err != nil {
			// The SFU lost the session (restart, resume window over): the
			// client must join afresh.
			c.SendSignal(&livekit.SignalResponse{Message: &livekit.SignalResponse_Leave{Leave: &livekit.LeaveRequest{
				CanReconnect: true, Reason: livekit.DisconnectReason_STATE_MISMATCH, Action: livekit.LeaveRequest_RECONNECT,
			}}})
			c.CloseSignal("unknown session")
			return
		}
	} else {
		sess, err = r.p.SFU.Join(sfu.JoinRequest{
			Room:          claims.room,
			Identity:      claims.identity,
			Subject:       claims.name,
			Name:          claims.name,
			Metadata:      claims.metadata,
			Attributes:    claims.attributes,
			Permission:    claims.permission,
			AutoSubscribe: jp.autoSubscribe,
			ClientInfo:    jp.clientInfo,
			ICEServers:    ice,
			Sink:          c,
			Admin:         claims.grant.RoomAdmin,
			Scope:         claims.attributes[MatrixRoomAttribute],

			SinglePeerConnection: v1,
		})
		if err != nil {
			reason := livekit.DisconnectReason_JOIN_FAILURE
			c.SendSignal(&livekit.SignalResponse{Message: &livekit.SignalResponse_Leave{Leave: &livekit.LeaveRequest{
				Reason: reason, Action: livekit.LeaveRequest_DISCONNECT,
			}}})
			c.CloseSignal(err.Error())
			return
		}
	}
	log = log.With("participant", sess.ParticipantSID())
	if r.roomChanges.Load() != changes {
		// A Matrix room changed while this client was admitted, perhaps
		// before RoomChanged could see the session: ask again.
		if err := r.admit(req.Context(), claims); err != nil {
			var ae *authError
			if !errors.As(err, &ae) {
				log.Warn("call admission: cannot ask again after a room change", "err", err)
			} else {
				sess.Remove(livekit.DisconnectReason_PARTICIPANT_REMOVED)
				r.metrics.liveGrants.WithLabelValues("removed").Inc()
			}
		}
	}
	c.refresh = func() *livekit.SignalResponse {
		tok, err := r.refreshToken(claims, sess.Permission(), sess.Admin())
		if err != nil {
			log.Warn("token refresh", "err", err)
			return nil
		}
		return &livekit.SignalResponse{Message: &livekit.SignalResponse_RefreshToken{RefreshToken: tok}}
	}
	c.refreshEvery = min(r.p.TokenRefresh, claims.validFor/2)
	c.startRefresh()
	r.metrics.sessions.Inc()
	defer r.metrics.sessions.Dec()

	end, ok := c.handleJoinRequests(sess, jp)
	if ok {
		end = c.readLoop(sess, r.p.PingTimeout)
	}
	log.Debug("signal connection ended", "reason", end.reason)
	switch end.kind {
	case endLeft, endViolation:
		if end.kind == endViolation {
			log.Warn("client disconnected for breaking the protocol", "reason", end.reason)
			c.SendSignal(&livekit.SignalResponse{Message: &livekit.SignalResponse_Leave{Leave: &livekit.LeaveRequest{
				Reason: livekit.DisconnectReason_UNKNOWN_REASON, Action: livekit.LeaveRequest_DISCONNECT,
			}}})
			c.closeWith(websocket.ClosePolicyViolation, end.reason)
		} else {
			c.CloseSignal("left")
		}
		stopReading()
		sess.Leave()
	default:
		// The connection dropped, or the server closed it: keep the
		// participant for a resume.
		c.CloseSignal(end.reason)
		stopReading()
		sess.SignalLost(c)
	}
}

func clientInfo(get func(string) string) *livekit.ClientInfo {
	ci := &livekit.ClientInfo{
		Version:        get("version"),
		Os:             get("os"),
		OsVersion:      get("os_version"),
		Browser:        get("browser"),
		BrowserVersion: get("browser_version"),
		DeviceModel:    get("device_model"),
		Network:        get("network"),
	}
	if v, err := strconv.Atoi(get("protocol")); err == nil {
		ci.Protocol = int32(v)
	}
	switch get("sdk") {
	case "js":
		ci.Sdk = livekit.ClientInfo_JS
	case "go":
		ci.Sdk = livekit.ClientInfo_GO
	case "reactnative":
		ci.Sdk = livekit.ClientInfo_REACT_NATIVE
	}
	return ci
}

// refreshToken mints the token a connected client resumes with: the same
// key, identity and room, the participant's current grant.
func (r *RTC) refreshToken(c *joinClaims, p sfu.Permission, admin bool) (string, error) {
	secret, ok := r.p.Keys.Secret(c.apiKey)
	if !ok {
		return "", fmt.Errorf("API key %s withdrawn", c.apiKey)
	}
	g := c.grant
	g.RoomAdmin = admin
	g.SetCanPublish(p.CanPublish)
	g.SetCanSubscribe(p.CanSubscribe)
	g.SetCanPublishData(p.CanPublishData)
	if len(p.CanPublishSources) > 0 {
		g.SetCanPublishSources(p.CanPublishSources)
	}
	at := auth.NewAccessToken(c.apiKey, secret).
		SetIdentity(c.identity).SetName(c.name).SetMetadata(c.metadata).
		SetValidFor(c.validFor).SetVideoGrant(&g)
	if len(c.attributes) > 0 {
		at.SetAttributes(c.attributes)
	}
	return at.ToJWT()
}
