package clientapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/salonhq/salon/homeserver/keys"
	"github.com/salonhq/salon/homeserver/store"
)

// KeyChanges answers /keys/changes (the sync engine knows who shares
// rooms with whom, and when).
type KeyChanges interface {
	KeyChanges(ctx context.Context, userID, from, to string) (changed, left []string, err error)
}

const msc3814 = "/_matrix/client/unstable/org.matrix.msc3814.v1"

func (a *API) keyRoutes() {
	if a.p.Keys == nil {
		return
	}
	a.handle(v3+"/keys/upload", methods{http.MethodPost: a.authed(a.keysUpload)})
	a.handle(v3+"/keys/query", methods{http.MethodPost: a.authed(a.keysQuery)})
	a.handle(v3+"/keys/claim", methods{http.MethodPost: a.authed(a.keysClaim)})
	a.handle(v3+"/keys/changes", methods{http.MethodGet: a.authed(a.keysChanges)})
	a.handle(v3+"/keys/device_signing/upload", methods{http.MethodPost: a.authed(a.deviceSigningUpload)})
	a.handle(v3+"/keys/signatures/upload", methods{http.MethodPost: a.authed(a.signaturesUpload)})
	a.handle(v3+"/sendToDevice/{eventType}/{txnId}", methods{http.MethodPut: a.authed(a.sendToDevice)})
	a.handle(msc3814+"/dehydrated_device", methods{
		http.MethodGet:    a.authed(a.getDehydrated),
		http.MethodPut:    a.authed(a.putDehydrated),
		http.MethodDelete: a.authed(a.deleteDehydrated),
	})
	// MSC3814 says POST with next_batch in the body; matrix-js-sdk 43 sends
	// GET with ?from=.
	a.handle(msc3814+"/dehydrated_device/{deviceId}/events", methods{
		http.MethodPost: a.authed(a.dehydratedEvents),
		http.MethodGet:  a.authed(a.dehydratedEvents),
	})
}

func (a *API) keysUpload(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req keys.UploadRequest
	if err := a.decode(r, &req, true); err != nil {
		return err
	}
	counts, err := a.p.Keys.Upload(r.Context(), dev.UserID, dev.DeviceID, req)
	if err != nil {
		return err
	}
	return reply(w, map[string]any{"one_time_key_counts": counts})
}

func (a *API) keysQuery(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		DeviceKeys map[string][]string `json:"device_keys"`
		Timeout    *int64              `json:"timeout"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.DeviceKeys == nil {
		return missing("device_keys")
	}
	res, err := a.p.Keys.Query(r.Context(), dev.UserID, req.DeviceKeys)
	if err != nil {
		return err
	}
	return reply(w, res)
}

func (a *API) keysClaim(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
		Timeout     *int64                       `json:"timeout"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.OneTimeKeys == nil {
		return missing("one_time_keys")
	}
	res, err := a.p.Keys.Claim(r.Context(), req.OneTimeKeys)
	if err != nil {
		return err
	}
	return reply(w, res)
}

func (a *API) keysChanges(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	if from == "" {
		return missing("from")
	}
	if to == "" {
		return missing("to")
	}
	changed, left, err := a.p.KeyChanges.KeyChanges(r.Context(), dev.UserID, from, to)
	if err != nil {
		return err
	}
	return reply(w, map[string]any{"changed": changed, "left": left})
}

func (a *API) deviceSigningUpload(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		keys.DeviceSigningRequest
		Auth json.RawMessage `json:"auth"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	ctx := r.Context()
	need, err := a.p.Keys.DeviceSigningNeedsAuth(ctx, dev.UserID, req.DeviceSigningRequest)
	if err != nil {
		return err
	}
	if need {
		// Accounts without a password (single sign-on) confirm through
		// m.login.sso, as for deleting a device.
		if err := a.interactiveUser(ctx, req.Auth, "device_signing:"+dev.UserID, dev); err != nil {
			return err
		}
	}
	if err := a.p.Keys.UploadDeviceSigning(ctx, dev.UserID, req.DeviceSigningRequest); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) signaturesUpload(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req map[string]map[string]json.RawMessage
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	res, err := a.p.Keys.UploadSignatures(r.Context(), dev.UserID, req)
	if err != nil {
		return err
	}
	return reply(w, res)
}

func (a *API) sendToDevice(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		Messages map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.Messages == nil {
		return missing("messages")
	}
	err := a.p.Keys.SendToDevice(r.Context(), dev.UserID, dev.DeviceID, r.PathValue("eventType"), r.PathValue("txnId"), req.Messages)
	if err != nil && !keys.IsReplay(err) {
		return err
	}
	return reply(w, empty)
}

func (a *API) getDehydrated(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	d, err := a.p.Keys.Dehydrated(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	return reply(w, map[string]any{"device_id": d.DeviceID, "device_data": json.RawMessage(d.DeviceData)})
}

func (a *API) putDehydrated(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req keys.DehydratedRequest
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.DeviceID == "" {
		return missing("device_id")
	}
	if len(req.DeviceData) == 0 {
		return missing("device_data")
	}
	if err := a.p.Keys.PutDehydrated(r.Context(), dev.UserID, req); err != nil {
		return err
	}
	return reply(w, map[string]any{"device_id": req.DeviceID})
}

func (a *API) deleteDehydrated(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	id, err := a.p.Keys.DeleteDehydrated(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	return reply(w, map[string]any{"device_id": id})
}

func (a *API) dehydratedEvents(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		NextBatch string `json:"next_batch"`
	}
	if r.Method == http.MethodGet {
		req.NextBatch = r.URL.Query().Get("from")
	} else if err := a.decode(r, &req, true); err != nil {
		return err
	}
	evs, next, err := a.p.Keys.DehydratedEvents(r.Context(), dev.UserID, r.PathValue("deviceId"), req.NextBatch)
	if err != nil {
		return err
	}
	out := map[string]any{"events": evs}
	if next != "" {
		out["next_batch"] = next
	}
	return reply(w, out)
}
