package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/salonhq/salon/internal/mxerr"
)

// The client side of the room endpoints: what this server asks a resident
// server when it fills a gap in a room's history (/get_missing_events,
// /state_ids, /event) or changes a local user's membership of a room it
// is not in (make_join, send_join, make_leave, send_leave, invite).

// fetchTimeout bounds each of these requests.
const fetchTimeout = 30 * time.Second

func (s *Service) roomCall(ctx context.Context, method, server, path string, query url.Values, body, out any) error {
	if !s.enabled {
		return ErrDisabled
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	return s.Client.Do(ctx, method, server, path, query, body, out, true)
}

func esc(s string) string { return url.PathEscape(s) }

// MissingEvents asks server for the events of a room between earliest
// and latest (POST /get_missing_events).
func (s *Service) MissingEvents(ctx context.Context, server, roomID string, earliest, latest []string, limit int, minDepth int64) ([]json.RawMessage, error) {
	var out struct {
		Events []json.RawMessage `json:"events"`
	}
	body := map[string]any{"earliest_events": earliest, "latest_events": latest, "limit": limit, "min_depth": minDepth}
	if err := s.roomCall(ctx, http.MethodPost, server, "/_matrix/federation/v1/get_missing_events/"+esc(roomID), nil, body, &out); err != nil {
		return nil, err
	}
	if len(out.Events) > limit {
		out.Events = out.Events[:limit]
	}
	return out.Events, nil
}

// Backfill asks server for up to limit events of the room preceding and
// including from (GET /backfill), the history from before this server
// joined.
func (s *Service) Backfill(ctx context.Context, server, roomID string, from []string, limit int) ([]json.RawMessage, error) {
	var out struct {
		PDUs []json.RawMessage `json:"pdus"`
	}
	q := url.Values{"v": from, "limit": {strconv.Itoa(limit)}}
	if err := s.roomCall(ctx, http.MethodGet, server, "/_matrix/federation/v1/backfill/"+esc(roomID), q, nil, &out); err != nil {
		return nil, err
	}
	if len(out.PDUs) > limit {
		out.PDUs = out.PDUs[:limit]
	}
	return out.PDUs, nil
}

// StateIDs asks server for the room's state before eventID (GET
// /state_ids): the state's event IDs and their auth chain's.
func (s *Service) StateIDs(ctx context.Context, server, roomID, eventID string) ([]string, []string, error) {
	var out struct {
		PDUs      []string `json:"pdu_ids"`
		AuthChain []string `json:"auth_chain_ids"`
	}
	if err := s.roomCall(ctx, http.MethodGet, server, "/_matrix/federation/v1/state_ids/"+esc(roomID), url.Values{"event_id": {eventID}}, nil, &out); err != nil {
		return nil, nil, err
	}
	return out.PDUs, out.AuthChain, nil
}

// Event asks server for one event (GET /event).
func (s *Service) Event(ctx context.Context, server, eventID string) (json.RawMessage, error) {
	var out struct {
		PDUs []json.RawMessage `json:"pdus"`
	}
	if err := s.roomCall(ctx, http.MethodGet, server, "/_matrix/federation/v1/event/"+esc(eventID), nil, nil, &out); err != nil {
		return nil, err
	}
	if len(out.PDUs) != 1 {
		return nil, ErrBadResponse
	}
	return out.PDUs[0], nil
}

// MakeJoin asks a resident server for a join event template (GET
// /make_join v1), saying which room versions this server supports.
func (s *Service) MakeJoin(ctx context.Context, server, roomID, userID string, versions []string) (string, json.RawMessage, error) {
	return s.makeTemplate(ctx, "join", server, roomID, userID, url.Values{"ver": versions})
}

// makeTemplate asks server for a membership event template (GET
// /make_{join,leave,knock} v1).
func (s *Service) makeTemplate(ctx context.Context, membership, server, roomID, userID string, q url.Values) (string, json.RawMessage, error) {
	var out struct {
		Version string          `json:"room_version"`
		Event   json.RawMessage `json:"event"`
	}
	if err := s.roomCall(ctx, http.MethodGet, server, "/_matrix/federation/v1/make_"+membership+"/"+esc(roomID)+"/"+esc(userID), q, nil, &out); err != nil {
		return "", nil, remoteMembershipError(err)
	}
	if out.Version == "" && membership != "knock" {
		// make_join's and make_leave's answers may leave the version out,
		// meaning 1; make_knock's must name it (knocks came in version 7).
		out.Version = "1"
	}
	return out.Version, out.Event, nil
}

// SendJoinAnswer is a resident server's answer to send_join v2.
type SendJoinAnswer struct {
	State     []json.RawMessage `json:"state"`
	AuthChain []json.RawMessage `json:"auth_chain"`
	Event     json.RawMessage   `json:"event,omitempty"`
}

// SendJoin sends a signed join to a resident server (PUT /send_join v2).
func (s *Service) SendJoin(ctx context.Context, server, roomID, eventID string, ev json.RawMessage) (SendJoinAnswer, error) {
	var out SendJoinAnswer
	err := s.roomCall(ctx, http.MethodPut, server, "/_matrix/federation/v2/send_join/"+esc(roomID)+"/"+esc(eventID), nil, ev, &out)
	return out, remoteMembershipError(err)
}

// MakeLeave asks a resident server for a leave event template.
func (s *Service) MakeLeave(ctx context.Context, server, roomID, userID string) (string, json.RawMessage, error) {
	return s.makeTemplate(ctx, "leave", server, roomID, userID, nil)
}

// SendLeave sends a signed leave to a resident server (PUT /send_leave v2).
func (s *Service) SendLeave(ctx context.Context, server, roomID, eventID string, ev json.RawMessage) error {
	return remoteMembershipError(s.roomCall(ctx, http.MethodPut, server, "/_matrix/federation/v2/send_leave/"+esc(roomID)+"/"+esc(eventID), nil, ev, nil))
}

// Invite asks the invitee's server to countersign an invite (PUT /invite
// v2) and returns the event it signed.
func (s *Service) Invite(ctx context.Context, server, roomID, eventID, version string, ev json.RawMessage, stripped []json.RawMessage) (json.RawMessage, error) {
	if stripped == nil {
		stripped = []json.RawMessage{}
	}
	body := map[string]any{"room_version": version, "event": ev, "invite_room_state": stripped}
	var out struct {
		Event json.RawMessage `json:"event"`
	}
	if err := s.roomCall(ctx, http.MethodPut, server, "/_matrix/federation/v2/invite/"+esc(roomID)+"/"+esc(eventID), nil, body, &out); err != nil {
		return nil, remoteMembershipError(err)
	}
	return out.Event, nil
}

// remoteMembershipError keeps a remote refusal's code (M_FORBIDDEN,
// M_INCOMPATIBLE_ROOM_VERSION, M_NOT_FOUND) for the local client.
func remoteMembershipError(err error) error {
	if err == nil {
		return nil
	}
	var re *RemoteError
	if errors.As(err, &re) && re.Status/100 == 4 && re.Code != "" {
		return mxerr.New(mxerr.Code(re.Code), "%s", re.Message).WithStatus(re.Status)
	}
	return remoteToMatrix(err)
}

// MakeKnock asks a resident server for a knock event template (GET
// /make_knock v1).
func (s *Service) MakeKnock(ctx context.Context, server, roomID, userID string, versions []string) (string, json.RawMessage, error) {
	return s.makeTemplate(ctx, "knock", server, roomID, userID, url.Values{"ver": versions})
}

// SendKnock sends a signed knock (PUT /send_knock v1) and returns the
// room's stripped state.
func (s *Service) SendKnock(ctx context.Context, server, roomID, eventID string, ev json.RawMessage) ([]json.RawMessage, error) {
	var out struct {
		State []json.RawMessage `json:"knock_room_state"`
	}
	if err := s.roomCall(ctx, http.MethodPut, server, "/_matrix/federation/v1/send_knock/"+esc(roomID)+"/"+esc(eventID), nil, ev, &out); err != nil {
		return nil, remoteMembershipError(err)
	}
	return out.State, nil
}
