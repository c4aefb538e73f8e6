package clientapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

func (a *API) spaceRoutes() {
	if a.p.Rooms == nil {
		return
	}
	a.handle(v1+"/rooms/{roomId}/hierarchy", methods{http.MethodGet: a.authed(a.hierarchy)})
	a.handle(v3+"/rooms/{roomId}/upgrade", methods{http.MethodPost: a.authed(a.upgradeRoom)})
}

func (a *API) hierarchy(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	req := rooms.HierarchyRequest{Root: roomID, MaxDepth: -1, Limit: 50, From: q.Get("from")}
	if v := q.Get("max_depth"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return mxerr.InvalidParamf("max_depth must be a non-negative integer")
		}
		req.MaxDepth = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return mxerr.InvalidParamf("limit must be a positive integer")
		}
		req.Limit = min(n, 200)
	}
	switch q.Get("suggested_only") {
	case "", "false":
	case "true":
		req.SuggestedOnly = true
	default:
		return mxerr.InvalidParamf("suggested_only must be true or false")
	}
	page, err := a.p.Rooms.Hierarchy(r.Context(), dev.UserID, req)
	if err != nil {
		if server, ok := a.remoteSpace(r, roomID); ok {
			return a.remoteHierarchy(w, r, dev, server, req)
		}
		return err
	}
	out := map[string]any{"rooms": page.Rooms}
	if page.Rooms == nil {
		out["rooms"] = []any{}
	}
	if page.NextBatch != "" {
		out["next_batch"] = page.NextBatch
	}
	return reply(w, out)
}

func (a *API) upgradeRoom(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var req struct {
		NewVersion string `json:"new_version"`
		// AdditionalCreators is MSC4289's: the creators besides the
		// upgrader of a v12 replacement room.
		AdditionalCreators json.RawMessage `json:"additional_creators"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.NewVersion == "" {
		return missing("new_version")
	}
	id, err := a.p.Rooms.Upgrade(r.Context(), roomID, dev.UserID, req.NewVersion, req.AdditionalCreators, a.profile)
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"replacement_room": id})
}

// remoteSpace reports whether a space this server does not know should be
// asked of another server over federation: the one its ID names (room
// versions before 12).
func (a *API) remoteSpace(r *http.Request, roomID string) (string, bool) {
	if a.p.RemoteHierarchy == nil {
		return "", false
	}
	if _, err := a.p.Rooms.Version(r.Context(), roomID); err == nil {
		return "", false
	}
	server := events.ServerOf(roomID)
	if server == "" || server == a.p.Config.ServerName {
		return "", false
	}
	return server, true
}

// remoteHierarchy answers /hierarchy for a space of another server: its
// summary and, below max_depth 0, its children the remote server lets
// this one see (one level: the Server-Server API's answer), in one page.
func (a *API) remoteHierarchy(w http.ResponseWriter, r *http.Request, dev store.Device, server string, req rooms.HierarchyRequest) error {
	if req.From != "" {
		return mxerr.InvalidParamf("Invalid or foreign pagination token")
	}
	raw, err := a.p.RemoteHierarchy(r.Context(), server, req.Root, req.SuggestedOnly)
	if err != nil {
		return err
	}
	var h struct {
		Room     json.RawMessage   `json:"room"`
		Children []json.RawMessage `json:"children"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return mxerr.New(mxerr.Unknown, "The remote server answered a malformed hierarchy").WithStatus(http.StatusBadGateway)
	}
	list := []json.RawMessage{nil}
	shown := map[string]bool{}
	for _, c := range h.Children {
		var chunk struct {
			RoomID        string   `json:"room_id"`
			JoinRule      string   `json:"join_rule"`
			WorldReadable bool     `json:"world_readable"`
			Allowed       []string `json:"allowed_room_ids"`
		}
		if json.Unmarshal(c, &chunk) != nil || chunk.RoomID == "" {
			continue
		}
		if a.remoteChildVisible(r, dev.UserID, chunk.JoinRule, chunk.WorldReadable, chunk.Allowed) {
			shown[chunk.RoomID] = true
			if req.MaxDepth != 0 {
				list = append(list, c)
			}
		}
	}
	// As for local spaces: the rooms the user may not see are left out
	// entirely, their IDs in children_state too.
	var room map[string]json.RawMessage
	if json.Unmarshal(h.Room, &room) != nil {
		return mxerr.New(mxerr.Unknown, "The remote server answered a malformed hierarchy").WithStatus(http.StatusBadGateway)
	}
	var links []json.RawMessage
	_ = json.Unmarshal(room["children_state"], &links)
	kept := []json.RawMessage{}
	for _, l := range links {
		var ev struct {
			StateKey string `json:"state_key"`
		}
		if json.Unmarshal(l, &ev) == nil && shown[ev.StateKey] {
			kept = append(kept, l)
		}
	}
	room["children_state"], _ = json.Marshal(kept)
	list[0], _ = json.Marshal(room)
	return reply(w, map[string]any{"rooms": list[:min(len(list), req.Limit)]})
}

// remoteChildVisible is the requesting server's part of the filtering
// (Server-Server API /hierarchy): the other server answered the children
// this server may see; of a restricted child the user sees the summary
// only when joined to one of its allowed rooms (or it is world_readable).
func (a *API) remoteChildVisible(r *http.Request, userID, joinRule string, worldReadable bool, allowed []string) bool {
	if joinRule != "restricted" || worldReadable {
		return true // knock_restricted: anyone may knock
	}
	for _, id := range allowed {
		if m, err := a.p.Rooms.Membership(r.Context(), id, userID); err == nil && m == "join" {
			return true
		}
	}
	return false
}
