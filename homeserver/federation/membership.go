package federation

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/internal/mxerr"
)

// RoomHost answers the membership handshakes other servers make with this
// one (spec: Joining Rooms, Leaving Rooms, Inviting to a Room). homeserver
// implements it over rooms; the origin is the authenticated server.
type RoomHost interface {
	MakeJoin(ctx context.Context, origin, roomID, userID string, versions []string) (version string, template json.RawMessage, err error)
	SendJoin(ctx context.Context, origin, roomID, eventID string, pdu json.RawMessage) (SendJoinAnswer, error)
	MakeLeave(ctx context.Context, origin, roomID, userID string) (version string, template json.RawMessage, err error)
	SendLeave(ctx context.Context, origin, roomID, eventID string, pdu json.RawMessage) error
	Invite(ctx context.Context, origin, roomID, eventID, version string, pdu json.RawMessage, strippedState []json.RawMessage) (json.RawMessage, error)
	MakeKnock(ctx context.Context, origin, roomID, userID string, versions []string) (version string, template json.RawMessage, err error)
	SendKnock(ctx context.Context, origin, roomID, eventID string, pdu json.RawMessage) (strippedState []json.RawMessage, err error)
}

func (s *Service) roomHost() (RoomHost, error) {
	if s.p.Host == nil {
		return nil, mxerr.NotFoundf("This server shares no rooms")
	}
	return s.p.Host, nil
}

func roomAndUser(r *http.Request) (string, string, error) {
	roomID, userID := r.PathValue("roomId"), r.PathValue("userId")
	if !events.ValidRoomID(roomID) {
		return "", "", mxerr.InvalidParamf("Invalid room ID")
	}
	if !events.ValidUserID(userID) {
		return "", "", mxerr.InvalidParamf("Invalid user ID")
	}
	return roomID, userID, nil
}

func roomAndEvent(r *http.Request, body []byte) (string, string, error) {
	roomID, eventID := r.PathValue("roomId"), r.PathValue("eventId")
	if !events.ValidRoomID(roomID) {
		return "", "", mxerr.InvalidParamf("Invalid room ID")
	}
	if !events.ValidEventID(eventID) {
		return "", "", mxerr.InvalidParamf("Invalid event ID")
	}
	if body == nil {
		return "", "", mxerr.BadJSONf("Missing event")
	}
	return roomID, eventID, nil
}

// serveMakeJoin: GET /_matrix/federation/v1/make_join/{roomId}/{userId}?ver=…
func (s *Service) serveMakeJoin(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	h, err := s.roomHost()
	if err != nil {
		return err
	}
	roomID, userID, err := roomAndUser(r)
	if err != nil {
		return err
	}
	vers := r.URL.Query()["ver"]
	if len(vers) == 0 {
		vers = []string{"1"} // no ver: the server supports version 1 only
	}
	v, ev, err := h.MakeJoin(r.Context(), origin, roomID, userID, vers)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"room_version": v, "event": ev})
	return nil
}

// serveSendJoin: PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}
func (s *Service) serveSendJoin(w http.ResponseWriter, r *http.Request, origin string, body []byte) error {
	h, err := s.roomHost()
	if err != nil {
		return err
	}
	roomID, eventID, err := roomAndEvent(r, body)
	if err != nil {
		return err
	}
	ans, err := h.SendJoin(r.Context(), origin, roomID, eventID, body)
	if err != nil {
		return err
	}
	out := map[string]any{"origin": s.p.ServerName, "state": nonNil(ans.State), "auth_chain": nonNil(ans.AuthChain), "members_omitted": false}
	if len(ans.Event) > 0 {
		out["event"] = ans.Event
	}
	mxerr.WriteJSON(w, http.StatusOK, out)
	return nil
}

func nonNil(l []json.RawMessage) []json.RawMessage {
	if l == nil {
		return []json.RawMessage{}
	}
	return l
}

// serveMakeLeave: GET /_matrix/federation/v1/make_leave/{roomId}/{userId}
func (s *Service) serveMakeLeave(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	h, err := s.roomHost()
	if err != nil {
		return err
	}
	roomID, userID, err := roomAndUser(r)
	if err != nil {
		return err
	}
	v, ev, err := h.MakeLeave(r.Context(), origin, roomID, userID)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"room_version": v, "event": ev})
	return nil
}

// serveSendLeave: PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}
func (s *Service) serveSendLeave(w http.ResponseWriter, r *http.Request, origin string, body []byte) error {
	h, err := s.roomHost()
	if err != nil {
		return err
	}
	roomID, eventID, err := roomAndEvent(r, body)
	if err != nil {
		return err
	}
	if err := h.SendLeave(r.Context(), origin, roomID, eventID, body); err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// serveInvite: PUT /_matrix/federation/v2/invite/{roomId}/{eventId}
func (s *Service) serveInvite(w http.ResponseWriter, r *http.Request, origin string, body []byte) error {
	h, err := s.roomHost()
	if err != nil {
		return err
	}
	roomID, eventID, err := roomAndEvent(r, body)
	if err != nil {
		return err
	}
	var req struct {
		RoomVersion string            `json:"room_version"`
		Event       json.RawMessage   `json:"event"`
		Stripped    []json.RawMessage `json:"invite_room_state"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Event) == 0 || req.RoomVersion == "" {
		return mxerr.BadJSONf("An invite needs room_version and event")
	}
	ev, err := h.Invite(r.Context(), origin, roomID, eventID, req.RoomVersion, req.Event, req.Stripped)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"event": ev})
	return nil
}

// serveMakeKnock: GET /_matrix/federation/v1/make_knock/{roomId}/{userId}?ver=…
func (s *Service) serveMakeKnock(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	h, err := s.roomHost()
	if err != nil {
		return err
	}
	roomID, userID, err := roomAndUser(r)
	if err != nil {
		return err
	}
	v, ev, err := h.MakeKnock(r.Context(), origin, roomID, userID, r.URL.Query()["ver"])
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"room_version": v, "event": ev})
	return nil
}

// serveSendKnock: PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}
func (s *Service) serveSendKnock(w http.ResponseWriter, r *http.Request, origin string, body []byte) error {
	h, err := s.roomHost()
	if err != nil {
		return err
	}
	roomID, eventID, err := roomAndEvent(r, body)
	if err != nil {
		return err
	}
	st, err := h.SendKnock(r.Context(), origin, roomID, eventID, body)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"knock_room_state": nonNil(st)})
	return nil
}
