package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/route"
	"github.com/salonhq/salon/internal/mxerr"
)

// Served room reads (Server-Server API, "Retrieving events" and
// "Backfilling and retrieving missing events"): /event, /state,
// /state_ids, /event_auth, /backfill, /get_missing_events.

// RoomPDU is an event as stored (its signed PDU) with its ID.
type RoomPDU struct {
	EventID string
	JSON    json.RawMessage
}

// RoomReader answers what another server may read of this server's
// rooms; homeserver implements it over rooms. origin is the requesting
// server; each method decides by history visibility what it may have
// (M_FORBIDDEN for a server that may read nothing of the room or not the
// named event, M_NOT_FOUND for an unknown event).
type RoomReader interface {
	// Event returns one event and the room it is in.
	Event(ctx context.Context, origin, eventID string) (roomID string, pdu json.RawMessage, err error)
	// State is the room's state before eventID and that state's auth chain.
	State(ctx context.Context, origin, roomID, eventID string) (state, authChain []RoomPDU, err error)
	// AuthChain is the auth chain of eventID.
	AuthChain(ctx context.Context, origin, roomID, eventID string) ([]RoomPDU, error)
	// Backfill is up to limit events preceding and including from, newest
	// first (those origin may not read redacted).
	Backfill(ctx context.Context, origin, roomID string, from []string, limit int) ([]RoomPDU, error)
	// MissingEvents is up to limit events between earliest and latest,
	// oldest first (those origin may not read redacted).
	MissingEvents(ctx context.Context, origin, roomID string, earliest, latest []string, limit int, minDepth int64) ([]RoomPDU, error)
	// ServerACL is the content of the room's m.room.server_acl (nil: none).
	ServerACL(ctx context.Context, roomID string) (json.RawMessage, error)
}

const (
	// maxBackfill caps /backfill's limit and maxMissing
	// /get_missing_events' limit; bigger asks get this many.
	maxBackfill = 100
	maxMissing  = 100
	// defaultMissing is /get_missing_events' limit when none is given.
	defaultMissing = 10
)

// roomReadRoutes registers the served room reads.
func (s *Service) roomReadRoutes(rt *route.Router, get func(route.HandlerFunc) route.Methods) {
	rt.Handle("/_matrix/federation/v1/event/{eventId}", get(s.authed(s.serveEvent)))
	rt.Handle("/_matrix/federation/v1/state/{roomId}", get(s.authed(s.serveState)))
	rt.Handle("/_matrix/federation/v1/state_ids/{roomId}", get(s.authed(s.serveStateIDs)))
	rt.Handle("/_matrix/federation/v1/event_auth/{roomId}/{eventId}", get(s.authed(s.serveEventAuth)))
	rt.Handle("/_matrix/federation/v1/backfill/{roomId}", get(s.authed(s.serveBackfill)))
	rt.Handle("/_matrix/federation/v1/get_missing_events/{roomId}", route.Methods{http.MethodPost: s.authed(s.serveMissingEvents)})
}

var errNoRooms = mxerr.Forbid("This server does not share rooms over federation")

// checkACL refuses origin when the room's m.room.server_acl does.
func (s *Service) checkACL(ctx context.Context, roomID, origin string) error {
	if s.p.Rooms == nil {
		return errNoRooms
	}
	content, err := s.p.Rooms.ServerACL(ctx, roomID)
	if err != nil {
		return err
	}
	if !ACLAllows(content, origin) {
		s.m.refused.WithLabelValues("server_acl").Inc()
		return mxerr.Forbid("Server %s is denied by the room's server ACL", origin)
	}
	return nil
}

// roomACL refuses an EDU about a room whose server ACL refuses origin
// (nothing to check without rooms).
func (s *Service) roomACL(ctx context.Context, roomID, origin string) error {
	if s.p.Rooms == nil {
		return nil
	}
	return s.checkACL(ctx, roomID, origin)
}

// roomArg checks the {roomId} of a request and the room's ACL.
func (s *Service) roomArg(r *http.Request, origin string) (string, error) {
	roomID := r.PathValue("roomId")
	if !events.ValidRoomID(roomID) {
		return "", mxerr.InvalidParamf("Invalid room ID")
	}
	return roomID, s.checkACL(r.Context(), roomID, origin)
}

func pduList(pdus []RoomPDU) []json.RawMessage {
	out := make([]json.RawMessage, len(pdus))
	for i, p := range pdus {
		out[i] = p.JSON
	}
	return out
}

func idList(pdus []RoomPDU) []string {
	out := make([]string, len(pdus))
	for i, p := range pdus {
		out[i] = p.EventID
	}
	return out
}

// transactionReply writes the Transaction an /event or /backfill answers.
func (s *Service) transactionReply(w http.ResponseWriter, pdus []json.RawMessage) {
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{
		"origin": s.p.ServerName, "origin_server_ts": s.p.Now().UnixMilli(), "pdus": pdus,
	})
}

// GET /_matrix/federation/v1/event/{eventId}
func (s *Service) serveEvent(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	if s.p.Rooms == nil {
		return errNoRooms
	}
	id := r.PathValue("eventId")
	if !events.ValidEventID(id) {
		return mxerr.NotFoundf("Event not found")
	}
	roomID, pdu, err := s.p.Rooms.Event(r.Context(), origin, id)
	if err != nil {
		return err
	}
	if err := s.checkACL(r.Context(), roomID, origin); err != nil {
		return err
	}
	s.transactionReply(w, []json.RawMessage{pdu})
	return nil
}

// eventIDArg is the event_id query parameter /state and /state_ids need.
func eventIDArg(r *http.Request) (string, error) {
	id := r.URL.Query().Get("event_id")
	if id == "" {
		return "", mxerr.New(mxerr.MissingParam, "Missing event_id")
	}
	if !events.ValidEventID(id) {
		return "", mxerr.NotFoundf("Event not found")
	}
	return id, nil
}

// GET /_matrix/federation/v1/state/{roomId}?event_id=
func (s *Service) serveState(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	state, chain, err := s.stateOf(r, origin)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"pdus": pduList(state), "auth_chain": pduList(chain)})
	return nil
}

// GET /_matrix/federation/v1/state_ids/{roomId}?event_id=
func (s *Service) serveStateIDs(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	state, chain, err := s.stateOf(r, origin)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"pdu_ids": idList(state), "auth_chain_ids": idList(chain)})
	return nil
}

func (s *Service) stateOf(r *http.Request, origin string) ([]RoomPDU, []RoomPDU, error) {
	roomID, err := s.roomArg(r, origin)
	if err != nil {
		return nil, nil, err
	}
	id, err := eventIDArg(r)
	if err != nil {
		return nil, nil, err
	}
	return s.p.Rooms.State(r.Context(), origin, roomID, id)
}

// GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}
func (s *Service) serveEventAuth(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	roomID, err := s.roomArg(r, origin)
	if err != nil {
		return err
	}
	id := r.PathValue("eventId")
	if !events.ValidEventID(id) {
		return mxerr.NotFoundf("Event not found")
	}
	chain, err := s.p.Rooms.AuthChain(r.Context(), origin, roomID, id)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"auth_chain": pduList(chain)})
	return nil
}

// GET /_matrix/federation/v1/backfill/{roomId}?v=&limit=
func (s *Service) serveBackfill(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	roomID, err := s.roomArg(r, origin)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	from := q["v"]
	if len(from) == 0 {
		return mxerr.New(mxerr.MissingParam, "Missing v")
	}
	if len(from) > maxBackfill {
		return mxerr.InvalidParamf("At most %d events in v", maxBackfill)
	}
	for _, id := range from {
		if !events.ValidEventID(id) {
			return mxerr.InvalidParamf("Invalid event ID in v")
		}
	}
	ls := q.Get("limit")
	if ls == "" {
		return mxerr.New(mxerr.MissingParam, "Missing limit")
	}
	limit, err := strconv.Atoi(ls)
	if err != nil || limit < 0 {
		return mxerr.InvalidParamf("limit must be a non-negative integer")
	}
	limit = min(limit, maxBackfill)
	pdus := []json.RawMessage{}
	if limit > 0 {
		got, err := s.p.Rooms.Backfill(r.Context(), origin, roomID, from, limit)
		if err != nil {
			return err
		}
		pdus = pduList(got)
	}
	s.transactionReply(w, pdus)
	return nil
}

// POST /_matrix/federation/v1/get_missing_events/{roomId}
func (s *Service) serveMissingEvents(w http.ResponseWriter, r *http.Request, origin string, body []byte) error {
	roomID, err := s.roomArg(r, origin)
	if err != nil {
		return err
	}
	var req struct {
		Earliest []string `json:"earliest_events"`
		Latest   []string `json:"latest_events"`
		Limit    *int     `json:"limit"`
		MinDepth int64    `json:"min_depth"`
	}
	if body == nil || json.Unmarshal(body, &req) != nil {
		return mxerr.BadJSONf("earliest_events and latest_events must be lists of event IDs")
	}
	if len(req.Latest) == 0 {
		return mxerr.BadJSONf("latest_events must not be empty")
	}
	if len(req.Earliest)+len(req.Latest) > 1000 {
		return mxerr.New(mxerr.TooLarge, "Too many events named")
	}
	limit := defaultMissing
	if req.Limit != nil {
		if *req.Limit < 0 {
			return mxerr.InvalidParamf("limit must be non-negative")
		}
		limit = min(*req.Limit, maxMissing)
	}
	out := []json.RawMessage{}
	if limit > 0 {
		got, err := s.p.Rooms.MissingEvents(r.Context(), origin, roomID, req.Earliest, req.Latest, limit, req.MinDepth)
		if err != nil {
			return err
		}
		out = pduList(got)
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"events": out})
	return nil
}
