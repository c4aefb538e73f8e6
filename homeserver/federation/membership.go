package federation

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/route"
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

// membershipRoutes registers the membership handshakes: one handler
// shape serves make_join, make_leave and make_knock, another send_join,
// send_leave, send_knock and invite.
func (s *Service) membershipRoutes(rt *route.Router, get func(route.HandlerFunc) route.Methods) {
	put := func(h route.HandlerFunc) route.Methods { return route.Methods{http.MethodPut: h} }
	rt.Handle("/_matrix/federation/v1/make_join/{roomId}/{userId}", get(s.authed(s.serveMake(makeJoin))))
	rt.Handle("/_matrix/federation/v2/send_join/{roomId}/{eventId}", put(s.authed(s.serveSend(s.sendJoin))))
	rt.Handle("/_matrix/federation/v1/send_join/{roomId}/{eventId}", put(s.authed(s.serveSend(v1(s.sendJoin)))))
	rt.Handle("/_matrix/federation/v1/make_leave/{roomId}/{userId}", get(s.authed(s.serveMake(makeLeave))))
	rt.Handle("/_matrix/federation/v2/send_leave/{roomId}/{eventId}", put(s.authed(s.serveSend(sendLeave))))
	rt.Handle("/_matrix/federation/v1/send_leave/{roomId}/{eventId}", put(s.authed(s.serveSend(v1(sendLeave)))))
	rt.Handle("/_matrix/federation/v2/invite/{roomId}/{eventId}", put(s.authed(s.serveSend(invite))))
	rt.Handle("/_matrix/federation/v1/make_knock/{roomId}/{userId}", get(s.authed(s.serveMake(RoomHost.MakeKnock))))
	rt.Handle("/_matrix/federation/v1/send_knock/{roomId}/{eventId}", put(s.authed(s.serveSend(sendKnock))))
}

// makeFunc asks the host for a membership event template; vers is the
// request's ver parameters.
type makeFunc func(h RoomHost, ctx context.Context, origin, roomID, userID string, vers []string) (string, json.RawMessage, error)

// serveMake serves GET make_{join,leave,knock}/{roomId}/{userId}?ver=…
func (s *Service) serveMake(template makeFunc) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
		h, err := s.roomHost()
		if err != nil {
			return err
		}
		roomID, userID, err := roomAndUser(r)
		if err != nil {
			return err
		}
		v, ev, err := template(h, r.Context(), origin, roomID, userID, r.URL.Query()["ver"])
		if err != nil {
			return err
		}
		mxerr.WriteJSON(w, http.StatusOK, map[string]any{"room_version": v, "event": ev})
		return nil
	}
}

func makeJoin(h RoomHost, ctx context.Context, origin, roomID, userID string, vers []string) (string, json.RawMessage, error) {
	if len(vers) == 0 {
		vers = []string{"1"} // no ver: the server supports version 1 only
	}
	return h.MakeJoin(ctx, origin, roomID, userID, vers)
}

func makeLeave(h RoomHost, ctx context.Context, origin, roomID, userID string, _ []string) (string, json.RawMessage, error) {
	return h.MakeLeave(ctx, origin, roomID, userID)
}

// sendFunc hands the host a signed membership event (body, the request's
// body) and returns the response's body.
type sendFunc func(h RoomHost, ctx context.Context, origin, roomID, eventID string, body []byte) (any, error)

// serveSend serves PUT send_{join,leave,knock}/{roomId}/{eventId} and
// invite/{roomId}/{eventId}.
func (s *Service) serveSend(send sendFunc) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, origin string, body []byte) error {
		h, err := s.roomHost()
		if err != nil {
			return err
		}
		roomID, eventID, err := roomAndEvent(r, body)
		if err != nil {
			return err
		}
		out, err := send(h, r.Context(), origin, roomID, eventID, body)
		if err != nil {
			return err
		}
		mxerr.WriteJSON(w, http.StatusOK, out)
		return nil
	}
}

// v1 is send's v1 endpoint (send_join, send_leave, deprecated but still
// asked by older servers): the same, its answer wrapped as [200, answer].
func v1(send sendFunc) sendFunc {
	return func(h RoomHost, ctx context.Context, origin, roomID, eventID string, body []byte) (any, error) {
		out, err := send(h, ctx, origin, roomID, eventID, body)
		if err != nil {
			return nil, err
		}
		return []any{http.StatusOK, out}, nil
	}
}

func (s *Service) sendJoin(h RoomHost, ctx context.Context, origin, roomID, eventID string, body []byte) (any, error) {
	ans, err := h.SendJoin(ctx, origin, roomID, eventID, body)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"origin": s.p.ServerName, "state": nonNil(ans.State), "auth_chain": nonNil(ans.AuthChain), "members_omitted": false}
	if len(ans.Event) > 0 {
		out["event"] = ans.Event
	}
	return out, nil
}

func nonNil(l []json.RawMessage) []json.RawMessage {
	if l == nil {
		return []json.RawMessage{}
	}
	return l
}

func sendLeave(h RoomHost, ctx context.Context, origin, roomID, eventID string, body []byte) (any, error) {
	return map[string]any{}, h.SendLeave(ctx, origin, roomID, eventID, body)
}

func sendKnock(h RoomHost, ctx context.Context, origin, roomID, eventID string, body []byte) (any, error) {
	st, err := h.SendKnock(ctx, origin, roomID, eventID, body)
	return map[string]any{"knock_room_state": nonNil(st)}, err
}

func invite(h RoomHost, ctx context.Context, origin, roomID, eventID string, body []byte) (any, error) {
	var req struct {
		RoomVersion string            `json:"room_version"`
		Event       json.RawMessage   `json:"event"`
		Stripped    []json.RawMessage `json:"invite_room_state"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Event) == 0 || req.RoomVersion == "" {
		return nil, mxerr.BadJSONf("An invite needs room_version and event")
	}
	ev, err := h.Invite(ctx, origin, roomID, eventID, req.RoomVersion, req.Event, req.Stripped)
	return map[string]any{"event": ev}, err
}
