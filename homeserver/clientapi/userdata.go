package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

func (a *API) userDataRoutes() {
	if a.p.Rooms == nil {
		return
	}
	if a.p.UserData != nil {
		a.handle(v3+"/user/{userId}/account_data/{type}", methods{http.MethodGet: a.authed(a.getAccountData), http.MethodPut: a.authed(a.putAccountData)})
		a.handle(v3+"/user/{userId}/rooms/{roomId}/account_data/{type}", methods{http.MethodGet: a.authed(a.getAccountData), http.MethodPut: a.authed(a.putAccountData)})
		a.handle(v3+"/user/{userId}/rooms/{roomId}/tags", methods{http.MethodGet: a.authed(a.getTags)})
		a.handle(v3+"/user/{userId}/rooms/{roomId}/tags/{tag}", methods{http.MethodPut: a.authed(a.putTag), http.MethodDelete: a.authed(a.deleteTag)})
		a.handle(v3+"/rooms/{roomId}/receipt/{receiptType}/{eventId}", methods{http.MethodPost: a.authed(a.postReceipt)})
		a.handle(v3+"/rooms/{roomId}/read_markers", methods{http.MethodPost: a.authed(a.readMarkers)})
	}
	a.handle(v3+"/rooms/{roomId}/context/{eventId}", methods{http.MethodGet: a.authed(a.eventContext)})
	a.handle(v3+"/user_directory/search", methods{http.MethodPost: a.authed(a.userDirectory)})
}

// UserData is what the account data, tag, receipt and read marker
// endpoints call (userdata.Service): it writes and wakes /sync itself.
type UserData interface {
	AccountData(ctx context.Context, userID, roomID, typ string) (json.RawMessage, error)
	PutAccountData(ctx context.Context, userID, roomID, typ string, content json.RawMessage) error
	Tags(ctx context.Context, userID, roomID string) (map[string]json.RawMessage, error)
	PutTag(ctx context.Context, userID, roomID, tag string, content json.RawMessage) error
	DeleteTag(ctx context.Context, userID, roomID, tag string) error
	Receipt(ctx context.Context, userID, roomID, typ, eventID, threadID string) error
	ReadMarkers(ctx context.Context, userID, roomID string, markers map[string]string) error
}

// ownData checks the path's user is the caller and reads the optional room.
func ownData(r *http.Request, dev store.Device) (roomID string, err error) {
	if r.PathValue("userId") != dev.UserID {
		return "", mxerr.Forbid("You can only access your own account data")
	}
	roomID = r.PathValue("roomId")
	if roomID != "" && !events.ValidRoomID(roomID) {
		return "", mxerr.InvalidParamf("Invalid room ID")
	}
	return roomID, nil
}

func (a *API) getAccountData(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := ownData(r, dev)
	if err != nil {
		return err
	}
	b, err := a.p.UserData.AccountData(r.Context(), dev.UserID, roomID, r.PathValue("type"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return nil
}

func (a *API) putAccountData(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := ownData(r, dev)
	if err != nil {
		return err
	}
	content, err := a.readContent(r)
	if err != nil {
		return err
	}
	if err := a.p.UserData.PutAccountData(r.Context(), dev.UserID, roomID, r.PathValue("type"), content); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) getTags(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := ownData(r, dev)
	if err != nil {
		return err
	}
	tags, err := a.p.UserData.Tags(r.Context(), dev.UserID, roomID)
	if err != nil {
		return err
	}
	return reply(w, map[string]any{"tags": tags})
}

func (a *API) putTag(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := ownData(r, dev)
	if err != nil {
		return err
	}
	var body struct {
		Order *float64 `json:"order"`
	}
	raw, err := a.readContent(r)
	if err != nil {
		return err
	}
	if err := decodeJSON(raw, &body, false); err != nil {
		return err
	}
	if err := a.p.UserData.PutTag(r.Context(), dev.UserID, roomID, r.PathValue("tag"), raw); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) deleteTag(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := ownData(r, dev)
	if err != nil {
		return err
	}
	if err := a.p.UserData.DeleteTag(r.Context(), dev.UserID, roomID, r.PathValue("tag")); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) postReceipt(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var body struct {
		ThreadID json.RawMessage `json:"thread_id"`
	}
	if err := a.decode(r, &body, true); err != nil {
		return err
	}
	typ := r.PathValue("receiptType")
	var threadID string
	if len(body.ThreadID) > 0 && string(body.ThreadID) != "null" {
		// A threaded receipt: "main" or a thread root's event ID, and
		// only for the read receipts (m.fully_read has no threads).
		if err := json.Unmarshal(body.ThreadID, &threadID); err != nil {
			return mxerr.InvalidParamf("thread_id must be a string")
		}
		if threadID != "main" && !events.ValidEventID(threadID) {
			return mxerr.InvalidParamf("thread_id must be \"main\" or an event ID")
		}
		if typ == "m.fully_read" {
			return mxerr.InvalidParamf("m.fully_read takes no thread_id")
		}
	}
	if err := a.p.UserData.Receipt(r.Context(), dev.UserID, roomID, typ, r.PathValue("eventId"), threadID); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) readMarkers(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var body map[string]string
	if err := a.decode(r, &body, true); err != nil {
		return err
	}
	if err := a.p.UserData.ReadMarkers(r.Context(), dev.UserID, roomID, body); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) eventContext(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	limit := 10
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return mxerr.InvalidParamf("limit must be a non-negative integer")
		}
		limit = min(n, 100)
	}
	// The filter applies to events_before and events_after, not to the
	// event itself; with lazy_load_members the state holds the members
	// who sent the events returned.
	flt, keep, err := eventFilterParam(r.URL.Query())
	if err != nil {
		return err
	}
	ctx := r.Context()
	row, v, err := a.p.Rooms.Event(ctx, dev.UserID, roomID, r.PathValue("eventId"))
	if err != nil {
		return err
	}
	half := max(limit/2, 1)
	before, err := a.p.Rooms.Messages(ctx, dev.UserID, roomID, rooms.Oldest, row.Pos, true, half, keep)
	if err != nil {
		return err
	}
	after, err := a.p.Rooms.Messages(ctx, dev.UserID, roomID, row.Pos, a.p.Store.CurrentPos()+1, false, max(limit-half, 1), keep)
	if err != nil {
		return err
	}
	var state []store.EventRow
	if flt.LazyLoadMembers {
		// As /messages: only the senders' member events, read without
		// the room's whole state.
		state, _, err = a.p.Rooms.MembersAtPos(ctx, dev.UserID, roomID, row.Pos, senders([]store.EventRow{row}, before.Events, after.Events))
	} else {
		state, _, err = a.p.Rooms.StateAtPos(ctx, dev.UserID, roomID, row.Pos)
	}
	if err != nil {
		return err
	}
	ev, err := clientEvent(v, row, dev)
	if err != nil {
		return err
	}
	b, err := clientEvents(v, before.Events, dev)
	if err != nil {
		return err
	}
	f, err := clientEvents(v, after.Events, dev)
	if err != nil {
		return err
	}
	st, err := clientEvents(v, state, dev)
	if err != nil {
		return err
	}
	start, end := row.Pos, row.Pos+1
	if n := len(before.Events); n > 0 {
		start = before.Events[n-1].Pos
	}
	if n := len(after.Events); n > 0 {
		end = after.Events[n-1].Pos + 1
	}
	return reply(w, map[string]any{
		"event": ev, "events_before": b, "events_after": f, "state": st,
		"start": "t" + strconv.FormatInt(start, 10), "end": "t" + strconv.FormatInt(end, 10),
	})
}

// userDirectory finds users who share a room with the searcher or sit in a
// public room — never anyone else (a privacy promise).
// directoryMatch reports whether a user directory search for term (lower
// case) finds the user: term is part of the display name or of the
// localpart, or is a user ID ("@local" or "@local:server") the user's ID
// starts with. The server name alone matches nobody: every local user
// has it.
func directoryMatch(userID, displayName, term string) bool {
	if strings.Contains(strings.ToLower(displayName), term) {
		return true
	}
	local, server, _ := strings.Cut(strings.ToLower(strings.TrimPrefix(userID, "@")), ":")
	if rest, ok := strings.CutPrefix(term, "@"); ok {
		tl, ts, hasServer := strings.Cut(rest, ":")
		if hasServer {
			return tl == local && strings.HasPrefix(server, ts)
		}
		return strings.HasPrefix(local, tl)
	}
	return strings.Contains(local, term)
}

func (a *API) userDirectory(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		SearchTerm string `json:"search_term"`
		Limit      int    `json:"limit"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.Limit <= 0 || req.Limit > 50 {
		req.Limit = min(max(req.Limit, 10), 50)
	}
	term := strings.ToLower(strings.TrimSpace(req.SearchTerm))
	if term == "" {
		return reply(w, map[string]any{"results": []any{}, "limited": false})
	}
	ctx := r.Context()
	candidates := map[string]bool{}
	// The directory holds the members of public rooms and the people the
	// searcher shares a room with; sharing a private room with oneself
	// does not list oneself (as in Synapse: a search for a prefix every
	// user ID has must not answer with the searcher).
	addRoom := func(roomID string, self bool) error {
		ms, err := a.p.Rooms.Members(ctx, roomID, "join")
		if err != nil {
			return err
		}
		for _, m := range ms {
			if self || m != dev.UserID {
				candidates[m] = true
			}
		}
		return nil
	}
	mine, err := a.p.Rooms.JoinedRooms(ctx, dev.UserID)
	if err != nil {
		return err
	}
	public, err := a.p.Rooms.PublicJoinRooms(ctx)
	if err != nil {
		return err
	}
	for _, id := range mine {
		if err := addRoom(id, false); err != nil {
			return err
		}
	}
	for _, id := range public {
		if err := addRoom(id, true); err != nil {
			return err
		}
	}
	type result struct {
		UserID      string `json:"user_id"`
		DisplayName string `json:"display_name,omitempty"`
		AvatarURL   string `json:"avatar_url,omitempty"`
	}
	var results []result
	for u := range candidates {
		p, _ := a.p.Store.Profile(ctx, u)
		if directoryMatch(u, p.DisplayName, term) {
			results = append(results, result{u, p.DisplayName, p.AvatarURL})
		}
	}
	// People from the outside directory who share no room with the caller
	// (or have not signed in yet). A directory that cannot be reached
	// leaves the local answer as it is.
	if a.p.Directory != nil && len(results) < req.Limit {
		found, err := a.p.Directory.SearchUsers(ctx, req.SearchTerm, req.Limit)
		if err != nil {
			a.log.Warn("user directory: outside directory search failed", "err", err)
		}
		for _, d := range found {
			if candidates[d.UserID] {
				continue
			}
			candidates[d.UserID] = true
			p, _ := a.p.Store.Profile(ctx, d.UserID)
			if p.DisplayName == "" {
				p.DisplayName = d.DisplayName
			}
			results = append(results, result{d.UserID, p.DisplayName, p.AvatarURL})
		}
	}
	sort.Slice(results, func(i, j int) bool { return results[i].UserID < results[j].UserID })
	limited := len(results) > req.Limit
	if limited {
		results = results[:req.Limit]
	}
	if results == nil {
		results = []result{}
	}
	return reply(w, map[string]any{"results": results, "limited": limited})
}
