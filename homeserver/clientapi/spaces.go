package clientapi

import (
	"encoding/json"
	"net/http"
	"strconv"

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
