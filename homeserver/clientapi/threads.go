package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// GET /v1/rooms/{roomId}/threads lists a room's thread roots, each with
// its thread summary bundled (unsigned.m.relations.m.thread).
func (a *API) threadRoutes() {
	a.handle(v1+"/rooms/{roomId}/threads", methods{http.MethodGet: a.authed(a.threads)})
}

func (a *API) threads(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	participated := false
	switch q.Get("include") {
	case "", "all":
	case "participated":
		participated = true
	default:
		return mxerr.InvalidParamf("include must be all or participated")
	}
	limit := 20
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return mxerr.InvalidParamf("limit must be an integer greater than zero")
		}
		limit = min(n, 100)
	}
	var before int64
	if f := q.Get("from"); f != "" {
		if before, err = parsePos(f); err != nil {
			return err
		}
	}
	ths, next, v, err := a.p.Rooms.Threads(r.Context(), dev.UserID, roomID, participated, before, limit)
	if err != nil {
		return err
	}
	chunk := make([]json.RawMessage, 0, len(ths))
	for _, th := range ths {
		ev, err := clientEvent(v, th.Root, dev)
		if err != nil {
			return err
		}
		if ev, err = withThreadSummary(ev, v, th, dev); err != nil {
			return err
		}
		chunk = append(chunk, ev)
	}
	out := map[string]any{"chunk": chunk}
	if next != 0 {
		out["next_batch"] = "t" + strconv.FormatInt(next, 10)
	}
	return reply(w, out)
}

// withThreadSummary bundles a thread's summary into its root's client
// event, beside any other unsigned data.
func withThreadSummary(ev json.RawMessage, v events.RoomVersion, th rooms.Thread, dev store.Device) (json.RawMessage, error) {
	latest, err := clientEvent(v, th.Latest, dev)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ev, &m); err != nil {
		return nil, err
	}
	unsigned := map[string]any{}
	if u, ok := m["unsigned"]; ok {
		if err := json.Unmarshal(u, &unsigned); err != nil {
			return nil, err
		}
	}
	rel, _ := unsigned["m.relations"].(map[string]any)
	if rel == nil {
		rel = map[string]any{}
	}
	rel["m.thread"] = map[string]any{"latest_event": latest, "count": th.Count, "current_user_participated": th.Participated}
	unsigned["m.relations"] = rel
	b, err := json.Marshal(unsigned)
	if err != nil {
		return nil, err
	}
	m["unsigned"] = b
	return json.Marshal(m)
}

// bundleThread adds the thread summary to an event that roots a thread
// the user can read a reply of; other events come back unchanged.
func (a *API) bundleThread(ctx context.Context, dev store.Device, row store.EventRow, v events.RoomVersion, ev json.RawMessage) (json.RawMessage, error) {
	if row.RelType == "m.thread" || row.StateKey != nil {
		return ev, nil // a reply or state: not a root
	}
	rd, err := a.p.Rooms.NewReader(ctx, row.RoomID, dev.UserID)
	if err != nil {
		return nil, err
	}
	th, ok, err := a.p.Rooms.ThreadSummary(ctx, rd, row)
	if err != nil || !ok {
		return ev, err
	}
	return withThreadSummary(ev, v, th, dev)
}

// bundleThreads adds thread summaries to the events of a page (one room)
// that root threads, in place: one query finds the roots.
func (a *API) bundleThreads(ctx context.Context, dev store.Device, roomID string, v events.RoomVersion, rows []store.EventRow, evs []json.RawMessage) error {
	var ids []string
	for _, row := range rows {
		if row.RelType != "m.thread" && row.StateKey == nil {
			ids = append(ids, row.EventID)
		}
	}
	roots, err := a.p.Store.WithThreads(ctx, roomID, ids)
	if err != nil || len(roots) == 0 {
		return err
	}
	rd, err := a.p.Rooms.NewReader(ctx, roomID, dev.UserID)
	if err != nil {
		return err
	}
	for i, row := range rows {
		if !slices.Contains(roots, row.EventID) {
			continue
		}
		th, ok, err := a.p.Rooms.ThreadSummary(ctx, rd, row)
		if err != nil {
			return err
		}
		if ok {
			if evs[i], err = withThreadSummary(evs[i], v, th, dev); err != nil {
				return err
			}
		}
	}
	return nil
}
