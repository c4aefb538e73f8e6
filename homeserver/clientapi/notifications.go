package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/pushrules"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// NotificationLister finds the events that notified a user (the push
// rules service).
type NotificationLister interface {
	Notifications(ctx context.Context, userID string, before int64, limit int, onlyHighlight bool) ([]pushrules.Notification, int64, error)
}

// GET /notifications (https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3notifications).
func (a *API) notificationRoutes() {
	if a.p.Notifications == nil {
		return
	}
	a.handle(v3+"/notifications", methods{http.MethodGet: a.authed(a.notifications)})
}

func (a *API) notifications(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	q := r.URL.Query()
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
		rest, ok := strings.CutPrefix(f, "n")
		n, err := strconv.ParseInt(rest, 10, 64)
		if !ok || err != nil || n < 1 {
			return mxerr.InvalidParamf("Unknown pagination token")
		}
		before = n
	}
	// "only" names a filter; highlight is the one the spec defines.
	onlyHighlight := q.Get("only") == "highlight"
	ctx := r.Context()
	ns, next, err := a.p.Notifications.Notifications(ctx, dev.UserID, before, limit, onlyHighlight)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ns))
	for _, n := range ns {
		v, err := a.p.Rooms.Version(ctx, n.Row.RoomID)
		if err != nil {
			return err
		}
		ev, err := clientEvent(v, n.Row, dev)
		if err != nil {
			return err
		}
		var ts struct {
			TS int64 `json:"origin_server_ts"`
		}
		_ = json.Unmarshal(n.Row.JSON, &ts)
		actions := make([]json.RawMessage, len(n.Actions))
		for i, act := range n.Actions {
			actions[i] = json.RawMessage(act)
		}
		out = append(out, map[string]any{
			"actions": actions, "event": ev, "read": n.Read, "room_id": n.Row.RoomID, "ts": ts.TS,
		})
	}
	res := map[string]any{"notifications": out}
	if next != 0 {
		res["next_token"] = "n" + strconv.FormatInt(next, 10)
	}
	return reply(w, res)
}
