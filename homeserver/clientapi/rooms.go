package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/sync"
	"github.com/salonhq/salon/internal/mxerr"
)

func (a *API) roomRoutes() {
	if a.p.Rooms == nil {
		return
	}
	a.handle(v3+"/createRoom", methods{http.MethodPost: a.authed(a.createRoom)})
	a.handle(v3+"/join/{roomIdOrAlias}", methods{http.MethodPost: a.authed(a.joinRoom)})
	a.handle(v3+"/knock/{roomIdOrAlias}", methods{http.MethodPost: a.authed(a.knockRoom)})
	a.handle(v3+"/rooms/{roomId}/join", methods{http.MethodPost: a.authed(a.joinRoom)})
	for _, op := range []string{"invite", "leave", "forget", "kick", "ban", "unban"} {
		a.handle(v3+"/rooms/{roomId}/"+op, methods{http.MethodPost: a.authed(a.membershipOp(op))})
	}
	a.handle(v3+"/joined_rooms", methods{http.MethodGet: a.authed(a.joinedRooms)})
	a.handle(v3+"/rooms/{roomId}/members", methods{http.MethodGet: a.authed(a.members)})
	a.handle(v3+"/rooms/{roomId}/joined_members", methods{http.MethodGet: a.authed(a.joinedMembers)})
	a.handle(v3+"/rooms/{roomId}/send/{eventType}/{txnId}", methods{http.MethodPut: a.authed(a.sendEvent)})
	a.handle(v3+"/rooms/{roomId}/state", methods{http.MethodGet: a.authed(a.getState)})
	a.handle(v3+"/rooms/{roomId}/state/{eventType}", methods{http.MethodGet: a.authed(a.getStateEvent), http.MethodPut: a.authed(a.putState)})
	a.handle(v3+"/rooms/{roomId}/state/{eventType}/{stateKey...}", methods{http.MethodGet: a.authed(a.getStateEvent), http.MethodPut: a.authed(a.putState)})
	a.handle(v3+"/rooms/{roomId}/redact/{eventId}/{txnId}", methods{http.MethodPut: a.authed(a.redact)})
	a.handle(v3+"/rooms/{roomId}/event/{eventId}", methods{http.MethodGet: a.authed(a.getEvent)})
	a.handle(v3+"/rooms/{roomId}/messages", methods{http.MethodGet: a.authed(a.messages)})
	a.handle(v1+"/rooms/{roomId}/relations/{eventId}", methods{http.MethodGet: a.authed(a.relations)})
	a.handle(v1+"/rooms/{roomId}/relations/{eventId}/{relType}", methods{http.MethodGet: a.authed(a.relations)})
	a.handle(v1+"/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}", methods{http.MethodGet: a.authed(a.relations)})
	a.handle(v3+"/directory/room/{roomAlias}", methods{
		http.MethodGet: a.getAlias, http.MethodPut: a.authed(a.putAlias), http.MethodDelete: a.authed(a.deleteAlias),
	})
	a.handle(v3+"/rooms/{roomId}/aliases", methods{http.MethodGet: a.authed(a.roomAliases)})
	a.handle(v3+"/directory/list/room/{roomId}", methods{http.MethodGet: a.getVisibility, http.MethodPut: a.authed(a.putVisibility)})
	a.handle(v3+"/publicRooms", methods{http.MethodGet: a.publicRooms, http.MethodPost: a.authed(a.publicRoomsPost)})
}

// profile adapts the account store for the rooms layer.
func (a *API) profile(ctx context.Context, userID string) (string, string) {
	p, err := a.p.Store.Profile(ctx, userID)
	if err != nil {
		return "", ""
	}
	return p.DisplayName, p.AvatarURL
}

func (a *API) createRoom(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req rooms.CreateRequest
	if err := a.decode(r, &req, true); err != nil {
		return err
	}
	id, alias, err := a.p.Rooms.Create(r.Context(), dev.UserID, req, a.profile)
	if err != nil {
		return err
	}
	out := map[string]string{"room_id": id}
	if alias != "" {
		out["room_alias"] = alias
	}
	return reply(w, out)
}

type reasonBody struct {
	Reason string `json:"reason"`
	UserID string `json:"user_id"`
}

func (a *API) joinRoom(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req reasonBody
	body, err := readBody(r, a.p.Config.MaxRequestBytes)
	if err != nil {
		return err
	}
	if err := decodeJSON(body, &req, true); err != nil {
		return err
	}
	var custom map[string]any
	if err := decodeJSON(body, &custom, true); err != nil {
		return err
	}
	target := r.PathValue("roomIdOrAlias")
	if target == "" {
		target = r.PathValue("roomId")
	}
	q := r.URL.Query()
	via := append(q["via"], q["server_name"]...)
	id, err := a.p.Rooms.JoinVia(r.Context(), target, dev.UserID, req.Reason, a.profile, custom, via)
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"room_id": id})
}

func (a *API) knockRoom(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req reasonBody
	if err := a.decode(r, &req, true); err != nil {
		return err
	}
	q := r.URL.Query()
	id, err := a.p.Rooms.KnockVia(r.Context(), r.PathValue("roomIdOrAlias"), dev.UserID, req.Reason, a.profile, append(q["via"], q["server_name"]...))
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"room_id": id})
}

func roomIDParam(r *http.Request) (string, error) {
	id := r.PathValue("roomId")
	if !events.ValidRoomID(id) {
		return "", mxerr.InvalidParamf("Invalid room ID")
	}
	return id, nil
}

func (a *API) membershipOp(op string) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, dev store.Device) error {
		roomID, err := roomIDParam(r)
		if err != nil {
			return err
		}
		var req reasonBody
		if err := a.decode(r, &req, op == "leave" || op == "forget"); err != nil {
			return err
		}
		needsTarget := op != "leave" && op != "forget"
		if needsTarget && req.UserID == "" {
			return missing("user_id")
		}
		if needsTarget && !events.ValidUserID(req.UserID) {
			return mxerr.InvalidParamf("Invalid user_id")
		}
		ctx := r.Context()
		rs := a.p.Rooms
		switch op {
		case "invite":
			err = rs.Invite(ctx, roomID, dev.UserID, req.UserID, req.Reason, a.profile)
		case "leave":
			err = rs.Leave(ctx, roomID, dev.UserID, req.Reason)
		case "forget":
			err = rs.Forget(ctx, roomID, dev.UserID)
		case "kick":
			err = rs.Kick(ctx, roomID, dev.UserID, req.UserID, req.Reason)
		case "ban":
			err = rs.Ban(ctx, roomID, dev.UserID, req.UserID, req.Reason)
		case "unban":
			err = rs.Unban(ctx, roomID, dev.UserID, req.UserID, req.Reason)
		}
		if err != nil {
			return err
		}
		return reply(w, empty)
	}
}

func (a *API) joinedRooms(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	ids, err := a.p.Rooms.JoinedRooms(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	return reply(w, map[string]any{"joined_rooms": ids})
}

// clientEvents turns stored events into client-format events.
func clientEvents(v events.RoomVersion, rows []store.EventRow, dev store.Device) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(rows))
	for _, row := range rows {
		b, err := clientEvent(v, row, dev)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func clientEvent(v events.RoomVersion, row store.EventRow, dev store.Device) (json.RawMessage, error) {
	ev, err := events.Parse(v, row.JSON)
	if err != nil {
		return nil, err
	}
	unsigned := map[string]any{}
	if len(row.Unsigned) > 0 {
		_ = json.Unmarshal(row.Unsigned, &unsigned)
	}
	if row.TxnID != "" && row.SenderDevice == dev.DeviceID && row.Sender == dev.UserID {
		unsigned["transaction_id"] = row.TxnID
	}
	if row.DelayID != "" && row.Sender == dev.UserID {
		unsigned[events.UnsignedDelayID] = row.DelayID
	}
	if row.RedactedBy != "" {
		unsigned["redacted_because"] = map[string]string{"event_id": row.RedactedBy, "type": "m.room.redaction"}
	}
	return ev.ClientJSON(unsigned)
}

func (a *API) members(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var rows []store.EventRow
	var v events.RoomVersion
	if at := q.Get("at"); at != "" {
		pos, err := parsePos(at)
		if err != nil {
			return err
		}
		rows, v, err = a.p.Rooms.StateAtPos(r.Context(), dev.UserID, roomID, pos-1)
		if err != nil {
			return err
		}
	} else if rows, v, err = a.p.Rooms.State(r.Context(), dev.UserID, roomID); err != nil {
		return err
	}
	want, not := q.Get("membership"), q.Get("not_membership")
	var chunk []store.EventRow
	for _, row := range rows {
		if row.Type != "m.room.member" || (want != "" && row.Membership != want) || (not != "" && row.Membership == not) {
			continue
		}
		chunk = append(chunk, row)
	}
	evs, err := clientEvents(v, chunk, dev)
	if err != nil {
		return err
	}
	return reply(w, map[string]any{"chunk": evs})
}

func (a *API) joinedMembers(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	// Only a member lists the members (spec: "The current user must be
	// in the room"): after leaving, the room's state as it was then is
	// not theirs to list, and an invitee sees stripped state only.
	if err := a.p.Rooms.RequireJoined(r.Context(), roomID, dev.UserID); err != nil {
		return err
	}
	rows, _, err := a.p.Rooms.State(r.Context(), dev.UserID, roomID)
	if err != nil {
		return err
	}
	joined := map[string]any{}
	for _, row := range rows {
		if row.Type != "m.room.member" || row.Membership != "join" {
			continue
		}
		var ev struct {
			Content struct {
				DisplayName string `json:"displayname"`
				AvatarURL   string `json:"avatar_url"`
			} `json:"content"`
		}
		_ = json.Unmarshal(row.JSON, &ev)
		// Both keys always, null when unset (as Synapse answers, and
		// what Complement's TestRoomState expects).
		m := map[string]*string{"display_name": nil, "avatar_url": nil}
		if ev.Content.DisplayName != "" {
			m["display_name"] = &ev.Content.DisplayName
		}
		if ev.Content.AvatarURL != "" {
			m["avatar_url"] = &ev.Content.AvatarURL
		}
		joined[*row.StateKey] = m
	}
	return reply(w, map[string]any{"joined": joined})
}

// withoutKey returns the JSON object content without key (content itself
// when it has no such key).
func withoutKey(content json.RawMessage, key string) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(content, &obj); err != nil {
		return nil, mxerr.BadJSONf("content must be a JSON object")
	}
	if _, ok := obj[key]; !ok {
		return content, nil
	}
	delete(obj, key)
	return json.Marshal(obj)
}

// readContent reads an event content body: a JSON object.
func (a *API) readContent(r *http.Request) (json.RawMessage, error) {
	b, err := readBody(r, a.p.Config.MaxRequestBytes)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := decodeJSON(b, &obj, false); err != nil {
		return nil, err
	}
	if len(b) > events.MaxEventBytes {
		return nil, mxerr.New(mxerr.TooLarge, "Event is larger than 65536 bytes")
	}
	return b, nil
}

func validEventType(t string) error {
	if t == "" || len(t) > 255 {
		return mxerr.InvalidParamf("Invalid event type")
	}
	return nil
}

func (a *API) sendEvent(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	typ, txn := r.PathValue("eventType"), r.PathValue("txnId")
	if err := validEventType(typ); err != nil {
		return err
	}
	if txn == "" || len(txn) > 255 {
		return mxerr.InvalidParamf("Invalid transaction ID")
	}
	if _, ok := r.URL.Query()[delayParam]; ok && a.p.Delayed != nil {
		// A retried delayed send is answered before its body is read, as
		// a retried send is (the transaction's first answer).
		if id, ok := a.p.Delayed.Replayed(dev.UserID, dev.DeviceID, roomID, txn); ok {
			return reply(w, map[string]string{"delay_id": id})
		}
	}
	content, err := a.readContent(r)
	if err != nil {
		return err
	}
	if ok, wait := a.sendLimit.Allow(dev.UserID); !ok {
		return rateLimited(wait)
	}
	if ms, ok, err := delayOf(r); err != nil {
		return err
	} else if ok {
		return a.scheduleDelayed(w, r, dev, roomID, typ, nil, content, ms)
	}
	e := rooms.Event{Type: typ, Content: content, Device: dev.DeviceID, TxnID: txn}
	if typ == "m.room.redaction" {
		var c struct {
			Redacts string `json:"redacts"`
		}
		_ = json.Unmarshal(content, &c)
		e.Redacts = c.Redacts
	}
	id, err := a.p.Rooms.Send(r.Context(), roomID, dev.UserID, e)
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"event_id": id})
}

func (a *API) putState(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	typ, key := r.PathValue("eventType"), r.PathValue("stateKey")
	if err := validEventType(typ); err != nil {
		return err
	}
	content, err := a.readContent(r)
	if err != nil {
		return err
	}
	// A user's membership is theirs: changing it goes through the
	// membership endpoints, which check the transition.
	if typ == "m.room.member" && key != dev.UserID {
		return mxerr.Forbid("Use /invite, /kick, /ban and /unban to change another user's membership")
	}
	// The server, not the client, names who authorised a restricted join
	// (rooms.Join, after checking the allowed rooms); a key the client
	// sent would let anyone vouch for themselves, and on a join -> join
	// (a profile change) it is not needed.
	if typ == "m.room.member" {
		if content, err = withoutKey(content, "join_authorised_via_users_server"); err != nil {
			return err
		}
	}
	if ms, ok, err := delayOf(r); err != nil {
		return err
	} else if ok {
		return a.scheduleDelayed(w, r, dev, roomID, typ, &key, content, ms)
	}
	id, err := a.p.Rooms.Send(r.Context(), roomID, dev.UserID, rooms.Event{Type: typ, StateKey: &key, Content: content})
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"event_id": id})
}

func (a *API) getState(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	rows, v, err := a.p.Rooms.State(r.Context(), dev.UserID, roomID)
	if err != nil {
		return err
	}
	evs, err := clientEvents(v, rows, dev)
	if err != nil {
		return err
	}
	return reply(w, evs)
}

func (a *API) getStateEvent(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	typ, key := r.PathValue("eventType"), r.PathValue("stateKey")
	rows, v, err := a.p.Rooms.State(r.Context(), dev.UserID, roomID)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row.Type == typ && row.StateKey != nil && *row.StateKey == key {
			if r.URL.Query().Get("format") == "event" {
				b, err := clientEvent(v, row, dev)
				if err != nil {
					return err
				}
				return reply(w, b)
			}
			ev, err := events.Parse(v, row.JSON)
			if err != nil {
				return err
			}
			return reply(w, ev.Content)
		}
	}
	return mxerr.NotFoundf("State event not found")
}

func (a *API) redact(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := a.decode(r, &req, true); err != nil {
		return err
	}
	c := map[string]any{}
	if req.Reason != "" {
		c["reason"] = req.Reason
	}
	target := r.PathValue("eventId")
	if err := a.p.Rooms.RequireJoined(r.Context(), roomID, dev.UserID); err != nil {
		return err
	}
	v, err := a.p.Rooms.Version(r.Context(), roomID)
	if err != nil {
		return err
	}
	if v.RedactsInContent() {
		c["redacts"] = target
	}
	content, _ := json.Marshal(c)
	id, err := a.p.Rooms.Send(r.Context(), roomID, dev.UserID, rooms.Event{
		Type: "m.room.redaction", Content: content, Redacts: target, Device: dev.DeviceID, TxnID: "redact:" + r.PathValue("txnId"),
	})
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"event_id": id})
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	row, v, err := a.p.Rooms.Event(r.Context(), dev.UserID, roomID, r.PathValue("eventId"))
	var me *mxerr.Error
	if errors.As(err, &me) && me.Code == mxerr.Forbidden {
		// A room the user may read nothing of: the spec's 404, "not found
		// or you do not have permission to read this event".
		return mxerr.NotFoundf("Event not found")
	}
	if err != nil {
		return err
	}
	b, err := clientEvent(v, row, dev)
	if err == nil {
		b, err = a.bundleThread(r.Context(), dev, row, v, b)
	}
	if err != nil {
		return err
	}
	return reply(w, b)
}

// parsePos reads a pagination token: "tP" from /messages and prev_batch
// (the gap just before position P), or a /sync next_batch "sN_T" (the gap
// just after N, so P = N+1).
func parsePos(tok string) (int64, error) {
	p, err := sync.MessagesBound(tok)
	if err != nil {
		return 0, mxerr.InvalidParamf("Invalid pagination token")
	}
	return p, nil
}

func (a *API) messages(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	dir := q.Get("dir")
	if dir == "" {
		dir = "b"
	}
	if dir != "b" && dir != "f" {
		return mxerr.InvalidParamf("dir must be b or f")
	}
	limit := 10
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return mxerr.InvalidParamf("limit must be a non-negative integer")
		}
		limit = min(max(n, 1), 1000)
	}
	// A token tP names the gap just before position P: paging back from
	// it returns positions < P, paging forward positions >= P.
	backwards := dir == "b"
	after, before := rooms.Oldest, a.p.Store.CurrentPos()+1
	if f := q.Get("from"); f != "" {
		p, err := parsePos(f)
		if err != nil {
			return err
		}
		if backwards {
			before = p
		} else {
			after = p - 1
		}
	}
	if t := q.Get("to"); t != "" {
		p, err := parsePos(t)
		if err != nil {
			return err
		}
		if backwards {
			after = max(after, p-1)
		} else {
			before = min(before, p)
		}
	}
	flt, keep, err := eventFilterParam(q)
	if err != nil {
		return err
	}
	page, err := a.p.Rooms.Messages(r.Context(), dev.UserID, roomID, after, before, backwards, limit, keep)
	if err != nil {
		return err
	}
	if backwards && page.Exhausted && len(page.Events) < limit && a.p.Rooms.Federated() {
		// Paging back past the oldest event held here: the history from
		// before this server joined, from the room's other servers.
		n, err := a.p.Rooms.Backfill(r.Context(), roomID, max(limit, 20))
		if err != nil {
			a.log.Warn("backfill", "room", roomID, "err", err)
		}
		if n > 0 {
			if page, err = a.p.Rooms.Messages(r.Context(), dev.UserID, roomID, after, before, backwards, limit, keep); err != nil {
				return err
			}
		}
	}
	evs, err := clientEvents(page.Version, page.Events, dev)
	if err == nil {
		err = a.bundleThreads(r.Context(), dev, roomID, page.Version, page.Events, evs)
	}
	if err != nil {
		return err
	}
	start := q.Get("from")
	if start == "" {
		if backwards {
			start = "t" + strconv.FormatInt(before, 10)
		} else {
			start = "t1"
		}
	}
	out := map[string]any{"chunk": evs, "start": start}
	// "end" is omitted only when there is nothing further: an empty chunk
	// at the end of the range (as Synapse does). A last page that has
	// events still gets an end, and paging from it answers an empty chunk
	// without one; a client that read a missing end on a full page as
	// "from the newest again" (matrix-nio) would loop forever otherwise.
	if page.Last != 0 && (len(page.Events) > 0 || !page.Exhausted) {
		if backwards {
			out["end"] = "t" + strconv.FormatInt(page.Last, 10)
		} else {
			out["end"] = "t" + strconv.FormatInt(page.Last+1, 10)
		}
	}
	if flt.LazyLoadMembers && len(page.Events) > 0 {
		state, err := a.lazyMembers(r.Context(), dev, roomID, page)
		if err != nil {
			return err
		}
		out["state"] = state
	}
	return reply(w, out)
}

// eventFilterParam reads the filter query parameter of /messages and
// /context: the same RoomEventFilter as in a sync filter. keep is nil
// without one.
func eventFilterParam(q url.Values) (flt sync.RoomEventFilter, keep func(store.EventRow) bool, err error) {
	f := q.Get("filter")
	if f == "" {
		return flt, nil, nil
	}
	if flt, err = sync.ParseRoomEventFilter([]byte(f)); err != nil {
		return flt, nil, err
	}
	return flt, flt.Keep, nil
}

// lazyMembers is /messages' "state" when members are lazy-loaded: the
// membership events of the chunk's senders, as the room state was at the
// newest event of the chunk (as far as the user may see it).
func (a *API) lazyMembers(ctx context.Context, dev store.Device, roomID string, page rooms.Page) ([]json.RawMessage, error) {
	var newest int64
	for _, ev := range page.Events {
		newest = max(newest, ev.Pos)
	}
	members, v, err := a.p.Rooms.MembersAtPos(ctx, dev.UserID, roomID, newest, senders(page.Events))
	if err != nil {
		return nil, err
	}
	return clientEvents(v, members, dev)
}

// relationsDepth is how deep recurse=true follows relations of relations
// (the spec recommends at least 3 levels).
const relationsDepth = 3

func (a *API) relations(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	parent := r.PathValue("eventId")
	q := r.URL.Query()
	rq := store.RelationsQuery{RoomID: roomID, EventID: parent, RelType: r.PathValue("relType"),
		EventType: r.PathValue("eventType"), Limit: 50, Depth: 1}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return mxerr.InvalidParamf("limit must be a non-negative integer")
		}
		rq.Limit = min(max(n, 1), 1000)
	}
	switch q.Get("dir") {
	case "", "b":
	case "f":
		rq.Forward = true
	default:
		return mxerr.InvalidParamf("dir must be b or f")
	}
	// A token is a bound: events before it have Pos < bound, events from
	// it on Pos >= bound. Backwards, from is the upper end and to the
	// lower; forwards the other way round.
	if f := q.Get("from"); f != "" {
		bound, err := parsePos(f)
		if err != nil {
			return err
		}
		if rq.Forward {
			rq.After = bound - 1
		} else {
			rq.Before = bound
		}
	}
	if t := q.Get("to"); t != "" {
		bound, err := parsePos(t)
		if err != nil {
			return err
		}
		if rq.Forward {
			rq.Before = bound
		} else {
			rq.After = bound - 1
		}
	}
	recurse, hasRecurse := false, q.Has("recurse")
	if hasRecurse {
		switch q.Get("recurse") {
		case "true":
			recurse, rq.Depth = true, relationsDepth
		case "false":
		default:
			return mxerr.InvalidParamf("recurse must be true or false")
		}
	}
	// The parent must be readable by the caller.
	if _, _, err := a.p.Rooms.Event(r.Context(), dev.UserID, roomID, parent); err != nil {
		return err
	}
	page, err := a.p.Rooms.Relations(r.Context(), dev.UserID, rq)
	if err != nil {
		return err
	}
	evs, err := clientEvents(page.Version, page.Events, dev)
	if err != nil {
		return err
	}
	out := map[string]any{"chunk": evs}
	if !page.Exhausted && page.Last > 0 {
		next := page.Last // backwards: Pos < Last
		if rq.Forward {
			next++ // forwards: Pos >= Last+1
		}
		out["next_batch"] = sync.PrevBatchToken(next)
	}
	if hasRecurse {
		depth := 0
		if recurse {
			depth = relationsDepth
		}
		out["recursion_depth"] = depth
	}
	return reply(w, out)
}

// senders lists, once each in order of first appearance, the senders of
// the events in lists (whose member events lazy_load_members sends).
func senders(lists ...[]store.EventRow) []string {
	seen := map[string]bool{}
	var ids []string
	for _, l := range lists {
		for _, e := range l {
			if !seen[e.Sender] {
				seen[e.Sender] = true
				ids = append(ids, e.Sender)
			}
		}
	}
	return ids
}
