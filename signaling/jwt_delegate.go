package signaling

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/salonhq/salon/internal/mxerr"
)

// DelegateTo lets the service take delayed leaves over for the embedded
// SFU's participants (MSC4195 /delegate_delayed_leave).
func (s *JWTService) DelegateTo(d *Delegations) { s.delegations.Store(d) }

// delegateRequest is MSC4195's /delegate_delayed_leave body.
type delegateRequest struct {
	RoomID      string      `json:"room_id"`
	SlotID      string      `json:"slot_id"`
	OpenIDToken openIDToken `json:"openid_token"`
	Member      rtcMember   `json:"member"`
	DelayID     string      `json:"delay_id"`
	// DelayTimeout is the client's wish (a number of milliseconds, as a
	// string in the MSC's example); the delayed event's own delay paces
	// the restarts.
	DelayTimeout json.RawMessage `json:"delay_timeout"`
}

// serveDelegate answers POST /delegate_delayed_leave: with the client's
// OpenID token, the service takes over restarting the delayed leave while
// the member's SFU session is alive, and sends it when the session ends.
func (s *JWTService) serveDelegate(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	d := s.delegations.Load()
	if d == nil {
		writeError(w, &jwtError{Error: mxerr.New(mxerr.Unrecognized, "Delegation needs the embedded SFU")})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		writeError(w, errMethod)
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	var req delegateRequest
	err := dec.Decode(&req)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if err != nil {
		writeError(w, badRequest(mxerr.NotJSON, "Error reading request: %v", err))
		return
	}
	if req.RoomID == "" || req.SlotID == "" || req.DelayID == "" || req.Member.ID == "" || req.Member.ClaimedDeviceID == "" ||
		req.OpenIDToken.AccessToken == "" || req.OpenIDToken.MatrixServerName == "" {
		writeError(w, badJSON("The request body is missing `room_id`, `slot_id`, `delay_id`, `member` or `openid_token` fields"))
		return
	}
	if !validRoomID(req.RoomID) {
		writeError(w, badRequest(mxerr.InvalidParam, "`room_id` is not a Matrix room ID"))
		return
	}
	if req.OpenIDToken.MatrixServerName != s.serverName {
		writeError(w, &jwtError{Error: mxerr.New(mxerr.Forbidden, "This service accepts OpenID tokens of %s only", s.serverName)})
		return
	}
	userID, err := s.authority.OpenIDUser(r.Context(), string(req.OpenIDToken.AccessToken))
	if errors.Is(err, ErrBadOpenIDToken) {
		writeError(w, &jwtError{Error: mxerr.New(mxerr.Unauthorized, "The OpenID token is unknown or expired")})
		return
	}
	if err != nil {
		s.log.Error("delegation: OpenID check", "err", err)
		writeError(w, internalError(err))
		return
	}
	if req.Member.ClaimedUserID != "" && req.Member.ClaimedUserID != userID {
		writeError(w, &jwtError{Error: mxerr.New(mxerr.Unauthorized, "member.claimed_user_id is not the OpenID token's user")})
		return
	}
	err = d.Delegate(r.Context(), DelegatedLeave{
		UserID: userID, RoomID: req.RoomID, SlotID: req.SlotID, DeviceID: req.Member.ClaimedDeviceID,
		MemberID: req.Member.ID, DelayID: req.DelayID,
	})
	if jerr := delegationError(err); jerr != nil {
		if jerr.HTTPStatus() >= 500 {
			s.log.Error("delegation failed", "user", userID, "err", err)
		}
		writeError(w, jerr)
		return
	}
	_, _ = w.Write([]byte("{}"))
}

// delegationError is Delegate's error as the JWT service answers it.
func delegationError(err error) *jwtError {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownDelay):
		return badRequest(mxerr.NotFound, "Unknown delayed event")
	case errors.Is(err, ErrNotJoined):
		return &jwtError{Error: mxerr.New(mxerr.Forbidden, "You are not joined to this room"), reason: refusalNotJoined}
	case errors.Is(err, ErrBadDelegation):
		return badJSON("Incomplete delegation")
	}
	return internalError(err)
}
