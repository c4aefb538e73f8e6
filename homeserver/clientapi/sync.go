package clientapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/sync"
	"github.com/salonhq/salon/internal/mxerr"
)

// SyncService is what /sync, /typing, /filter and /presence call. Writers
// wake /sync themselves (rooms, userdata, keys, pushrules): no handler
// notifies.
type SyncService interface {
	Sync(ctx context.Context, req sync.Request) (*sync.Response, error)
	SetTyping(roomID, userID string, typing bool, timeout time.Duration, members []string)
	// SetPresence, PresenceStatus, SyncStarted and PresenceActive are the
	// presence tracker (sync.Presence); with presence off they accept
	// everything, change nothing and answer offline.
	SetPresence(userID, state, msg string)
	PresenceStatus(userID string) sync.PresenceStatus
	SyncStarted(userID, deviceID, setPresence string) (done func())
	PresenceActive(userID string)
	// SharesRoom reports whether two users are joined to a common room.
	SharesRoom(ctx context.Context, user, other string) (bool, error)
}

// maxSyncTimeout caps a long-poll: proxies in front cut idle requests.
const maxSyncTimeout = 5 * time.Minute

func (a *API) syncRoutes() {
	if a.p.Sync == nil {
		return
	}
	a.handle(v3+"/sync", methods{http.MethodGet: a.authed(a.sync)})
	a.handle(v3+"/rooms/{roomId}/typing/{userId}", methods{http.MethodPut: a.authed(a.typing)})
	a.handle(v3+"/user/{userId}/filter", methods{http.MethodPost: a.authed(a.postFilter)})
	a.handle(v3+"/user/{userId}/filter/{filterId}", methods{http.MethodGet: a.authed(a.getFilter)})
	a.handle(v3+"/presence/{userId}/status", methods{http.MethodGet: a.authed(a.getPresence), http.MethodPut: a.authed(a.putPresence)})
}

func (a *API) sync(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	q := r.URL.Query()
	req := sync.Request{UserID: dev.UserID, DeviceID: dev.DeviceID, Since: q.Get("since"), SetPresence: q.Get("set_presence")}
	if t := q.Get("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms < 0 {
			return mxerr.InvalidParamf("timeout must be a non-negative integer of milliseconds")
		}
		req.Timeout = min(time.Duration(ms)*time.Millisecond, maxSyncTimeout)
	}
	switch q.Get("full_state") {
	case "", "false":
	case "true":
		req.FullState = true
	default:
		return mxerr.InvalidParamf("full_state must be true or false")
	}
	// MSC4222: state_after (the state at the end of the timeline) instead
	// of state, under the name matching the parameter's.
	for param, field := range map[string]string{
		"use_state_after": "state_after", "org.matrix.msc4222.use_state_after": "org.matrix.msc4222.state_after",
	} {
		switch q.Get(param) {
		case "", "false":
		case "true":
			req.StateAfter = field
		default:
			return mxerr.InvalidParamf("%s must be true or false", param)
		}
	}
	switch req.SetPresence {
	case "", "online", "offline", "unavailable":
	default:
		return mxerr.InvalidParamf("set_presence must be online, offline or unavailable")
	}
	if f := q.Get("filter"); f != "" {
		flt, err := a.filters.syncFilter(r.Context(), a.p.Store, dev.UserID, f)
		if err != nil {
			return err
		}
		req.Filter = flt
	}
	// The sync marks its user online (or unavailable) and keeps them from
	// going idle while it waits.
	done := a.p.Sync.SyncStarted(dev.UserID, dev.DeviceID, req.SetPresence)
	defer done()
	// A long-poll ends early when the server shuts down, so SIGTERM does
	// not wait out every client's timeout.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.drainCtx, cancel)
	defer stop()
	resp, err := a.p.Sync.Sync(ctx, req)
	if err != nil && a.drainCtx.Err() != nil && r.Context().Err() == nil && req.Since != "" {
		// Nothing new: the client comes back with the same token.
		return reply(w, map[string]any{"next_batch": req.Since})
	}
	if err != nil {
		return err
	}
	return reply(w, resp)
}

// Drain ends the long-polls in flight (at shutdown).
func (a *API) Drain() { a.drain() }

func (a *API) typing(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	if r.PathValue("userId") != dev.UserID {
		return mxerr.Forbid("You can only set your own typing state")
	}
	var req struct {
		Typing  *bool `json:"typing"`
		Timeout int64 `json:"timeout"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.Typing == nil {
		return missing("typing")
	}
	members, err := a.p.Rooms.Members(r.Context(), roomID, "join")
	if err != nil {
		return mxerr.Forbid("You are not joined to this room")
	}
	if !slices.Contains(members, dev.UserID) {
		return mxerr.Forbid("You are not joined to this room")
	}
	a.p.Sync.SetTyping(roomID, dev.UserID, *req.Typing, time.Duration(req.Timeout)*time.Millisecond, members)
	return reply(w, empty)
}

func (a *API) postFilter(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	if r.PathValue("userId") != dev.UserID {
		return mxerr.Forbid("You can only create filters for yourself")
	}
	b, err := readBody(r, 64<<10)
	if err != nil {
		return err
	}
	var probe map[string]any
	if err := decodeJSON(b, &probe, false); err != nil {
		return err
	}
	if err := sync.ValidateFilterJSON(b); err != nil {
		return err
	}
	id, err := a.p.Store.PutFilter(r.Context(), dev.UserID, b)
	if err != nil {
		return err
	}
	return reply(w, map[string]string{"filter_id": id})
}

func (a *API) getFilter(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	if r.PathValue("userId") != dev.UserID {
		return mxerr.Forbid("You can only read your own filters")
	}
	b, err := a.p.Store.Filter(r.Context(), dev.UserID, r.PathValue("filterId"))
	if errors.Is(err, store.ErrNotFound) {
		return mxerr.NotFoundf("Unknown filter")
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return nil
}

func (a *API) getPresence(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	userID := r.PathValue("userId")
	if !events.ValidUserID(userID) {
		return mxerr.InvalidParamf("Invalid user ID")
	}
	// Presence says when someone is at their desk: only people who share a
	// room with them may ask (Synapse's rule too); to anyone else every
	// user is unknown.
	if userID != dev.UserID {
		shared, err := a.p.Sync.SharesRoom(r.Context(), dev.UserID, userID)
		if err != nil {
			return err
		}
		if !shared {
			return mxerr.Forbid("You are not allowed to see their presence")
		}
	}
	return reply(w, a.p.Sync.PresenceStatus(userID))
}

func (a *API) putPresence(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	if r.PathValue("userId") != dev.UserID {
		return mxerr.Forbid("You can only set your own presence")
	}
	var req struct {
		Presence  string `json:"presence"`
		StatusMsg string `json:"status_msg"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	switch req.Presence {
	case "online", "offline", "unavailable":
	default:
		return mxerr.InvalidParamf("presence must be online, offline or unavailable")
	}
	if len(req.StatusMsg) > 1024 {
		return mxerr.InvalidParamf("status_msg is too long")
	}
	a.p.Sync.SetPresence(dev.UserID, req.Presence, req.StatusMsg)
	return reply(w, empty)
}
