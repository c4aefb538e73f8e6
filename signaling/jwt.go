package signaling

// The MatrixRTC JWT service, in process: what element-hq/lk-jwt-service
// does beside a LiveKit deployment, answering the same requests with the
// same shapes, error codes, room names and identities, with one
// difference: a token goes only to a user who is joined to the room now,
// and its grant follows the room's power levels and teaching mode (see
// Authority); RTC.RoomChanged keeps it following them during the call. Where
// lk-jwt-service has no rule (another server's user, a non-member) the
// answer is MSC4195's: 403 M_FORBIDDEN.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/livekit/protocol/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/internal/redact"
)

// JWTParams carries what NewJWTService needs.
type JWTParams struct {
	// Config is the `livekit:` section; zero values mean the defaults.
	Config JWTConfig
	// Keys sign tokens for the embedded SFU. Unused (and may be nil) when
	// Config names an external LiveKit deployment.
	Keys *KeySet
	// Authority answers who holds an OpenID token and what they may do in
	// a room's call.
	Authority Authority
	// SFUURL returns the embedded SFU's WebSocket URL (ws(s)://HOST/PATH),
	// handed to clients as "url". It is called for every token; unused
	// when Config names an external deployment.
	SFUURL func() string
	// ServerName is this homeserver's name: OpenID tokens must name it.
	ServerName string
	// Logger is narrowed with component=jwt; nil discards.
	Logger *slog.Logger
	// Registerer gets the service's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// JWTService issues LiveKit access tokens to members of Matrix rooms.
// It holds no goroutines and needs no Close.
type JWTService struct {
	cfg        JWTConfig
	keys       *KeySet
	authority  Authority
	sfuURL     func() string
	serverName string
	log        *slog.Logger
	external   *externalRooms // nil: the embedded SFU
	counters   jwtCounters
	handler    http.Handler
	// delegations takes delayed leaves over (DelegateTo); nil: the
	// embedded SFU is not running, /delegate_delayed_leave answers 404.
	delegations atomic.Pointer[Delegations]
}

// NewJWTService checks p and returns the service.
func NewJWTService(p JWTParams) (*JWTService, error) {
	if err := p.Config.Validate(); err != nil {
		return nil, err
	}
	cfg := p.Config.withDefaults()
	if p.Authority == nil {
		return nil, ErrNoAuthority
	}
	if p.ServerName == "" {
		return nil, errors.New("signaling: JWTParams.ServerName is empty")
	}
	s := &JWTService{
		cfg:        cfg,
		keys:       p.Keys,
		authority:  p.Authority,
		sfuURL:     p.SFUURL,
		serverName: p.ServerName,
		log:        p.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "jwt")
	if cfg.External() {
		ext, err := newExternalRooms(cfg)
		if err != nil {
			return nil, err
		}
		s.external = ext
	} else {
		if p.Keys == nil {
			return nil, ErrNoKeys
		}
		if p.SFUURL == nil {
			return nil, ErrNoSFUURL
		}
	}
	if err := registerJWTCollector(p.Registerer, &s.counters); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// Handler serves, relative to where it is mounted:
//
//	POST /get_token  MatrixRTC token request (room_id, slot_id, openid_token, member)
//	POST /sfu/get    legacy token request (room, openid_token, device_id)
//	GET  /healthz    200 while the process serves
//
// Both token requests answer {"url", "jwt"}. Every answer carries CORS
// headers allowing any origin (Element Call runs on its own), and OPTIONS
// preflights are answered. Mount it under the advertised
// livekit_service_url path with http.StripPrefix, e.g.
//
//	mux.Handle("/livekit/jwt/", http.StripPrefix("/livekit/jwt", svc.Handler()))
func (s *JWTService) Handler() http.Handler { return s.handler }

func (s *JWTService) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/get_token", s.serveToken(endpointGetToken))
	mux.HandleFunc("/sfu/get", s.serveToken(endpointSFUGet))
	mux.HandleFunc("/delegate_delayed_leave", s.serveDelegate)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, errMethod)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &jwtError{Error: mxerr.New(mxerr.Unrecognized, "Unrecognized request")})
	})
	return cors(mux)
}

// cors lets browser clients on any origin call the service: the requests
// carry no cookies, only an OpenID token in the body. Like
// lk-jwt-service, a preflight gets 200 here.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// maxRequestBytes bounds a token request's body; real ones are under 1 KiB.
const maxRequestBytes = 16 << 10

// maxIDLen bounds every identifier in a request: 255 bytes, the Matrix
// limit for user and room IDs.
const maxIDLen = 255

// Request and response shapes, as lk-jwt-service has them.
type (
	openIDToken struct {
		AccessToken      redact.Secret `json:"access_token"` // never logged
		TokenType        string        `json:"token_type"`
		MatrixServerName string        `json:"matrix_server_name"`
		ExpiresIn        int           `json:"expires_in"`
	}
	rtcMember struct {
		ID              string `json:"id"`
		ClaimedUserID   string `json:"claimed_user_id"`
		ClaimedDeviceID string `json:"claimed_device_id"`
	}
	// delayDelegation is lk-jwt-service's optional hand-over of the
	// client's delayed leave event (MSC4140) with the token request. With
	// the embedded SFU (DelegateTo) it is taken over as
	// /delegate_delayed_leave does; otherwise a complete set is refused,
	// as lk-jwt-service refuses a homeserver it does not serve in full.
	delayDelegation struct {
		DelayID       string `json:"delay_id"`
		DelayTimeout  int    `json:"delay_timeout"`
		DelayCSAPIURL string `json:"delay_cs_api_url"`
	}
	getTokenRequest struct {
		RoomID      string      `json:"room_id"`
		SlotID      string      `json:"slot_id"`
		OpenIDToken openIDToken `json:"openid_token"`
		Member      rtcMember   `json:"member"`
		delayDelegation
	}
	sfuGetRequest struct {
		Room        string      `json:"room"`
		OpenIDToken openIDToken `json:"openid_token"`
		DeviceID    string      `json:"device_id"`
		delayDelegation
	}
	tokenResponse struct {
		URL string `json:"url"`
		JWT string `json:"jwt"`
	}
)

// tokenRequest is either request, checked and reduced to what issuing
// needs.
type tokenRequest struct {
	endpoint    endpoint
	roomID      string
	slotID      string
	openID      openIDToken
	claimedUser string // "" for the legacy request
	deviceID    string
	memberID    string // "" for the legacy request
	delegation  bool
	delayID     string
}

func (s *JWTService) serveToken(ep endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST, OPTIONS")
			writeError(w, errMethod)
			return
		}
		req, jerr := decodeTokenRequest(ep, r, w)
		if jerr == nil {
			var resp *tokenResponse
			resp, jerr = s.issue(r.Context(), req)
			if jerr == nil {
				s.counters.issued[ep].Add(1)
				_ = json.NewEncoder(w).Encode(resp)
				return
			}
		}
		s.counters.refusals[jerr.reason].Add(1)
		log := s.log.With("endpoint", ep.String(), "reason", jerr.reason.String(), "status", jerr.HTTPStatus(),
			"remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
		if jerr.user != "" {
			log = log.With("user", jerr.user)
		}
		switch {
		case jerr.HTTPStatus() >= 500:
			log.Error("token request failed", "err", jerr.cause)
		case jerr.reason == refusalBadRequest:
			log.Debug("token request refused", "error", jerr.Message)
		default:
			log.Info("token request refused", "error", jerr.Message)
		}
		writeError(w, jerr)
	}
}

// decodeTokenRequest reads and checks the body of either request. Unknown
// fields are refused, as lk-jwt-service refuses them.
func decodeTokenRequest(ep endpoint, r *http.Request, w http.ResponseWriter) (*tokenRequest, *jwtError) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	var dst any
	var gt getTokenRequest
	var sg sfuGetRequest
	if ep == endpointGetToken {
		dst = &gt
	} else {
		dst = &sg
	}
	err := dec.Decode(dst)
	if err == nil {
		// One JSON value, nothing after it.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, badRequest(mxerr.TooLarge, "The request body is over %d bytes", maxRequestBytes)
		}
		return nil, badRequest(mxerr.NotJSON, "Error reading request: %v", err)
	}

	var req tokenRequest
	var d delayDelegation
	if ep == endpointGetToken {
		if gt.RoomID == "" || gt.SlotID == "" {
			return nil, badJSON("The request body is missing `room_id` or `slot_id`")
		}
		if gt.Member.ID == "" || gt.Member.ClaimedUserID == "" || gt.Member.ClaimedDeviceID == "" {
			return nil, badJSON("The request body `member` is missing a `id`, `claimed_user_id` or `claimed_device_id`")
		}
		if gt.OpenIDToken.AccessToken == "" || gt.OpenIDToken.MatrixServerName == "" {
			return nil, badJSON("The request body `openid_token` is missing a `access_token` or `matrix_server_name`")
		}
		req = tokenRequest{endpoint: ep, roomID: gt.RoomID, slotID: gt.SlotID, openID: gt.OpenIDToken,
			claimedUser: gt.Member.ClaimedUserID, deviceID: gt.Member.ClaimedDeviceID, memberID: gt.Member.ID}
		d = gt.delayDelegation
	} else {
		if sg.Room == "" {
			return nil, badJSON("Missing room parameter")
		}
		if sg.OpenIDToken.AccessToken == "" || sg.OpenIDToken.MatrixServerName == "" {
			return nil, badJSON("Missing OpenID token parameters")
		}
		// lk-jwt-service lets it be empty; then every device of a user is
		// the same participant and they push each other out of the call.
		if sg.DeviceID == "" {
			return nil, badJSON("Missing device_id parameter")
		}
		req = tokenRequest{endpoint: ep, roomID: sg.Room, slotID: LegacySlotID, openID: sg.OpenIDToken, deviceID: sg.DeviceID}
		d = sg.delayDelegation
	}
	all := d.DelayID != "" && d.DelayTimeout > 0 && d.DelayCSAPIURL != ""
	some := d.DelayID != "" || d.DelayTimeout > 0 || d.DelayCSAPIURL != ""
	if some && !all {
		return nil, badJSON("The request body is missing `delay_id`, `delay_timeout` or `delay_cs_api_url`")
	}
	req.delegation = all
	req.delayID = d.DelayID

	roomKey := "room_id"
	if ep == endpointSFUGet {
		roomKey = "room"
	}
	if !validRoomID(req.roomID) {
		return nil, badRequest(mxerr.InvalidParam, "`%s` is not a Matrix room ID", roomKey)
	}
	for _, f := range []struct{ key, v string }{
		{"slot_id", req.slotID}, {"member.id", req.memberID}, {"member.claimed_user_id", req.claimedUser},
		{"member.claimed_device_id", req.deviceID}, {"openid_token.matrix_server_name", req.openID.MatrixServerName},
	} {
		if len(f.v) > maxIDLen {
			if ep == endpointSFUGet && f.key == "member.claimed_device_id" {
				f.key = "device_id"
			}
			return nil, badRequest(mxerr.InvalidParam, "`%s` is over %d bytes", f.key, maxIDLen)
		}
	}
	return &req, nil
}

// validRoomID accepts both forms of room ID: "!opaque:server" and the
// server-less "!hash" of room version 12. It refuses what cannot be one:
// no sigil, over 255 bytes, spaces or control characters.
func validRoomID(id string) bool {
	if len(id) < 2 || len(id) > maxIDLen || id[0] != '!' {
		return false
	}
	return !strings.ContainsFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// issue decides and signs. Nothing changes on a refusal but a counter.
func (s *JWTService) issue(ctx context.Context, req *tokenRequest) (*tokenResponse, *jwtError) {
	// Salon speaks no federation: only its own users' tokens can be
	// checked, and MSC4195 refuses a user of another server with 403.
	if req.openID.MatrixServerName != s.serverName {
		return nil, &jwtError{Error: mxerr.New(mxerr.Forbidden, "This service accepts OpenID tokens of %s only, not of %s", s.serverName, req.openID.MatrixServerName), reason: refusalOtherServer}
	}
	userID, err := s.authority.OpenIDUser(ctx, string(req.openID.AccessToken))
	if errors.Is(err, ErrBadOpenIDToken) {
		return nil, &jwtError{Error: mxerr.New(mxerr.Unauthorized, "The request could not be authorised: the OpenID token is unknown or expired"), reason: refusalBadOpenIDToken}
	}
	if err != nil {
		return nil, internalError(fmt.Errorf("OpenIDUser: %w", err))
	}
	refuse := func(e *jwtError) (*tokenResponse, *jwtError) {
		e.user = userID
		return nil, e
	}
	if req.claimedUser != "" && req.claimedUser != userID {
		return refuse(&jwtError{Error: mxerr.New(mxerr.Unauthorized, "The request could not be authorised: member.claimed_user_id is not the OpenID token's user"), reason: refusalWrongUser})
	}
	delegations := s.delegations.Load()
	if req.delegation && delegations == nil {
		// lk-jwt-service's answer to a homeserver it does not serve in
		// full; Element Call then asks again without delegation.
		return refuse(&jwtError{Error: mxerr.New(mxerr.BadJSON, "Delegation of delayed events is only supported for full access users"), reason: refusalDelegation})
	}
	perms, err := s.authority.CallPermissions(ctx, userID, req.roomID)
	if err != nil {
		return refuse(internalError(fmt.Errorf("CallPermissions: %w", err)))
	}
	if !perms.Joined {
		return refuse(&jwtError{Error: mxerr.New(mxerr.Forbidden, "You are not joined to this room"), reason: refusalNotJoined})
	}

	room := LiveKitRoomAlias(req.roomID, req.slotID)
	identity := LegacyLiveKitIdentity(userID, req.deviceID)
	if req.endpoint == endpointGetToken {
		identity = LiveKitIdentity(userID, req.deviceID, req.memberID)
	}
	key, secret, url := s.focus()
	if url == "" {
		return refuse(internalError(errors.New("the SFU URL is empty")))
	}
	jwt, err := auth.NewAccessToken(key, secret).
		SetIdentity(identity).
		SetName(userID).
		SetAttributes(map[string]string{MatrixRoomAttribute: req.roomID}).
		SetVideoGrant(videoGrant(room, perms)).
		SetValidFor(s.cfg.TokenTTL).
		ToJWT()
	if err != nil {
		return refuse(internalError(fmt.Errorf("signing: %w", err)))
	}
	if req.delegation {
		err := delegations.Delegate(ctx, DelegatedLeave{
			UserID: userID, RoomID: req.roomID, SlotID: req.slotID, DeviceID: req.deviceID, MemberID: req.memberID, DelayID: req.delayID,
		})
		if jerr := delegationError(err); jerr != nil {
			return refuse(jerr)
		}
	}
	if s.external != nil {
		if err := s.external.create(ctx, room); err != nil {
			return refuse(&jwtError{Error: mxerr.New(mxerr.Unknown, "Unable to create room on SFU"), reason: refusalInternal, cause: err})
		}
	}
	s.log.Debug("token issued", "endpoint", req.endpoint.String(), "user", userID, "matrix_room", req.roomID,
		"slot", req.slotID, "room", room, "identity", identity, "moderator", perms.Moderate)
	return &tokenResponse{URL: url, JWT: jwt}, nil
}

// focus is the key, secret and URL of the SFU that tokens are for.
func (s *JWTService) focus() (key, secret, url string) {
	if s.external != nil {
		return s.cfg.ExternalKey, string(s.cfg.ExternalSecret), s.cfg.ExternalURL
	}
	key, secret = s.keys.Current()
	return key, secret, s.sfuURL()
}

// jwtError is a refusal: the Matrix error the client sees, in
// lk-jwt-service's shape {"errcode", "error"} with the status of mxerr's
// one table, and what the metrics count and the log says.
type jwtError struct {
	*mxerr.Error
	reason refusal
	cause  error  // logged, never sent
	user   string // logged: the OpenID token's user, once known
}

var errMethod = &jwtError{Error: mxerr.New(mxerr.Unrecognized, "Method not allowed").WithStatus(http.StatusMethodNotAllowed)}

func badJSON(msg string) *jwtError {
	return badRequest(mxerr.BadJSON, "%s", msg)
}

func badRequest(code mxerr.Code, format string, args ...any) *jwtError {
	return &jwtError{Error: mxerr.New(code, format, args...), reason: refusalBadRequest}
}

func internalError(cause error) *jwtError {
	return &jwtError{Error: mxerr.New(mxerr.Unknown, "Internal Server Error"), reason: refusalInternal, cause: cause}
}

// writeError answers with e's Matrix error (causes are logged by the
// caller, never sent).
func writeError(w http.ResponseWriter, e *jwtError) {
	mxerr.Write(w, nil, e.Error)
}
