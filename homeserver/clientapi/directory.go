package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/route"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

func (a *API) aliasParam(r *http.Request) (string, error) {
	alias := r.PathValue("roomAlias")
	if !events.ValidRoomAlias(alias) {
		return "", mxerr.InvalidParamf("Invalid room alias")
	}
	return alias, nil
}

func (a *API) getAlias(w http.ResponseWriter, r *http.Request) error {
	alias, err := a.aliasParam(r)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(alias, ":"+a.p.Config.ServerName) && a.p.RemoteAlias != nil {
		id, servers, err := a.p.RemoteAlias(r.Context(), alias)
		if err != nil {
			return err
		}
		return reply(w, map[string]any{"room_id": id, "servers": servers})
	}
	id, _, err := a.p.Store.Alias(r.Context(), alias)
	if errors.Is(err, store.ErrNotFound) {
		return mxerr.NotFoundf("Room alias not found")
	}
	if err != nil {
		return err
	}
	return reply(w, map[string]any{"room_id": id, "servers": []string{a.p.Config.ServerName}})
}

func (a *API) putAlias(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	alias, err := a.aliasParam(r)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(alias, ":"+a.p.Config.ServerName) {
		return mxerr.InvalidParamf("Aliases must be on this server")
	}
	var req struct {
		RoomID string `json:"room_id"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if !events.ValidRoomID(req.RoomID) {
		return mxerr.InvalidParamf("Invalid room_id")
	}
	// Only members of a room may give it an alias (the same answer for
	// a room that does not exist).
	if err := a.p.Rooms.RequireJoined(r.Context(), req.RoomID, dev.UserID); err != nil {
		return err
	}
	err = a.p.Store.CreateAlias(r.Context(), alias, req.RoomID, dev.UserID)
	if errors.Is(err, store.ErrExists) {
		return mxerr.New(mxerr.Unknown, "Room alias already exists").WithStatus(http.StatusConflict)
	}
	if err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	alias, err := a.aliasParam(r)
	if err != nil {
		return err
	}
	if err := a.p.Rooms.DeleteAlias(r.Context(), alias, dev.UserID); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) roomAliases(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	// Joined members, or anyone when the room is world_readable: not
	// someone who has left (the spec's rule for this endpoint).
	if err := a.p.Rooms.SeesCurrentState(r.Context(), dev.UserID, roomID); err != nil {
		return err
	}
	as, err := a.p.Store.RoomAliases(r.Context(), roomID)
	if err != nil {
		return err
	}
	if as == nil {
		as = []string{}
	}
	return reply(w, map[string]any{"aliases": as})
}

func (a *API) getVisibility(w http.ResponseWriter, r *http.Request) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	// Anyone may ask, without a token: a room this server does not have
	// answers "private" like an unpublished one, so the answer does not
	// tell which rooms exist.
	room, err := a.p.Store.Room(r.Context(), roomID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	vis := "private"
	if err == nil && room.Published {
		vis = "public"
	}
	return reply(w, map[string]string{"visibility": vis})
}

// putVisibility publishes a room in the directory: room moderators (who may
// change m.room.canonical_alias) decide, never the server's operator.
func (a *API) putVisibility(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var req struct {
		Visibility string `json:"visibility"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.Visibility != "public" && req.Visibility != "private" {
		return mxerr.InvalidParamf("visibility must be public or private")
	}
	ok, err := a.p.Rooms.CanSendState(r.Context(), roomID, dev.UserID, "m.room.canonical_alias")
	if err != nil {
		return err
	}
	if !ok {
		return mxerr.Forbid("You may not change this room's directory visibility")
	}
	if err := a.p.Store.SetPublished(r.Context(), roomID, req.Visibility == "public"); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) publicRooms(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return mxerr.InvalidParamf("limit must be a non-negative integer")
		}
		limit = n
	}
	server := q.Get("server")
	if server != "" && server != a.p.Config.ServerName && a.p.RemotePublicRooms != nil {
		// Another server's directory costs a request over federation:
		// for users of this server only, not for anyone on the Internet.
		if _, err := a.p.Auth.Authenticate(r.Context(), route.AccessToken(r), a.clientIP(r)); err != nil {
			return err
		}
	}
	return a.listPublicRooms(w, r, server, rooms.PublicRoomsQuery{Limit: limit, Since: q.Get("since")})
}

func (a *API) publicRoomsPost(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		Limit  int    `json:"limit"`
		Since  string `json:"since"`
		Filter struct {
			GenericSearchTerm string          `json:"generic_search_term"`
			RoomTypes         json.RawMessage `json:"room_types"`
		} `json:"filter"`
	}
	if err := a.decode(r, &req, true); err != nil {
		return err
	}
	if req.Limit < 0 {
		return mxerr.InvalidParamf("limit must be non-negative")
	}
	types, err := rooms.ParseRoomTypes(req.Filter.RoomTypes)
	if err != nil {
		return err
	}
	return a.listPublicRooms(w, r, r.URL.Query().Get("server"), rooms.PublicRoomsQuery{
		Limit: req.Limit, Since: req.Since, Term: req.Filter.GenericSearchTerm, RoomTypes: types})
}

// listPublicRooms answers a page of this server's directory, or of
// server's over federation.
func (a *API) listPublicRooms(w http.ResponseWriter, r *http.Request, server string, q rooms.PublicRoomsQuery) error {
	if server != "" && server != a.p.Config.ServerName {
		if a.p.RemotePublicRooms == nil {
			return mxerr.New(mxerr.Unknown, "Federation is not enabled").WithStatus(http.StatusBadRequest)
		}
		if !events.ValidServerName(server) {
			return mxerr.InvalidParamf("Invalid server name")
		}
		page, err := a.p.RemotePublicRooms(r.Context(), server, q)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(page)
		return nil
	}
	out, err := a.p.Rooms.PublicRooms(r.Context(), q)
	if err != nil {
		return err
	}
	return reply(w, out)
}
