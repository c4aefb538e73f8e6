package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/sync"
	"github.com/salonhq/salon/internal/mxerr"
)

// msc3575 is the prefix of simplified sliding sync (MSC4186, served under
// the unstable name clients use).
const msc3575 = "/_matrix/client/unstable/org.matrix.simplified_msc3575"

// SlidingSyncer answers sliding sync requests (sync.Engine).
type SlidingSyncer interface {
	SlidingSync(ctx context.Context, req sync.SlidingRequest) (*sync.SlidingResponse, error)
}

func (a *API) slidingRoutes() {
	if a.p.Sync == nil {
		return
	}
	if _, ok := a.p.Sync.(SlidingSyncer); !ok {
		return
	}
	a.handle(msc3575+"/sync", methods{http.MethodPost: a.authed(a.slidingSync)})
}

// slidingSync is POST .../org.matrix.simplified_msc3575/sync: pos and
// timeout in the query string (or, as the MSC now says, the body).
func (a *API) slidingSync(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	b, err := readBody(r, 1<<20)
	if err != nil {
		return err
	}
	var probe map[string]json.RawMessage
	if err := decodeJSON(b, &probe, true); err != nil {
		return err
	}
	req, err := sync.ParseSlidingRequest(b)
	if err != nil {
		return err
	}
	req.UserID, req.DeviceID = dev.UserID, dev.DeviceID
	q := r.URL.Query()
	req.Pos = q.Get("pos")
	if req.Pos == "" {
		req.Pos = req.BodyPos
	}
	ms := int64(0)
	if t := q.Get("timeout"); t != "" {
		if ms, err = strconv.ParseInt(t, 10, 64); err != nil || ms < 0 {
			return mxerr.InvalidParamf("timeout must be a non-negative integer of milliseconds")
		}
	} else if req.BodyTimeout != nil {
		ms = *req.BodyTimeout
	}
	req.Timeout = min(time.Duration(ms)*time.Millisecond, maxSyncTimeout)
	setPresence := q.Get("set_presence")
	switch setPresence {
	case "", "online", "offline", "unavailable":
	default:
		return mxerr.InvalidParamf("set_presence must be online, offline or unavailable")
	}
	done := a.p.Sync.SyncStarted(dev.UserID, dev.DeviceID, setPresence)
	defer done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.drainCtx, cancel)
	defer stop()
	resp, err := a.p.Sync.(SlidingSyncer).SlidingSync(ctx, req)
	if err != nil && a.drainCtx.Err() != nil && r.Context().Err() == nil && req.Pos != "" {
		// Shutting down: the client comes back with the same pos, which
		// the next run does not know, and starts over.
		return mxerr.New(mxerr.UnknownPos, "The server is restarting")
	}
	if err != nil {
		return err
	}
	return reply(w, resp)
}

func (a *API) slidingEnabled() bool {
	_, ok := a.p.Sync.(SlidingSyncer)
	return ok && a.p.Sync != nil
}
