package clientapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Pushers (https://spec.matrix.org/latest/client-server-api/#push-notifications):
// where a user's notifications go. Salon stores them; GET /pushers lists
// them.
func (a *API) pusherRoutes() {
	a.handle(v3+"/pushers", methods{http.MethodGet: a.authed(a.getPushers)})
	a.handle(v3+"/pushers/set", methods{http.MethodPost: a.authed(a.setPusher)})
}

// PushGatewayPath is the only path a push gateway's URL may have.
const PushGatewayPath = "/_matrix/push/v1/notify"

func (a *API) getPushers(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	ps, err := a.p.Store.Pushers(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		m := map[string]any{
			"pushkey": p.PushKey, "kind": p.Kind, "app_id": p.AppID,
			"app_display_name": p.AppDisplayName, "device_display_name": p.DeviceDisplayName,
			"lang": p.Lang, "data": json.RawMessage(p.Data),
		}
		if p.ProfileTag != "" {
			m["profile_tag"] = p.ProfileTag
		}
		out = append(out, m)
	}
	return reply(w, map[string]any{"pushers": out})
}

type setPusherRequest struct {
	PushKey           *string         `json:"pushkey"`
	Kind              json.RawMessage `json:"kind"`
	AppID             *string         `json:"app_id"`
	AppDisplayName    *string         `json:"app_display_name"`
	DeviceDisplayName *string         `json:"device_display_name"`
	ProfileTag        string          `json:"profile_tag"`
	Lang              *string         `json:"lang"`
	Data              json.RawMessage `json:"data"`
	Append            bool            `json:"append"`
}

type pusherData struct {
	URL    *string `json:"url"`
	Format *string `json:"format"`
}

func (a *API) setPusher(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req setPusherRequest
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	var missingParams []string
	if req.Kind == nil {
		missingParams = append(missingParams, "kind")
	}
	if req.AppID == nil {
		missingParams = append(missingParams, "app_id")
	}
	if req.PushKey == nil {
		missingParams = append(missingParams, "pushkey")
	}
	if len(missingParams) > 0 {
		return mxerr.New(mxerr.MissingParam, "Missing parameters: %s", strings.Join(missingParams, ", "))
	}
	var kind *string
	if err := json.Unmarshal(req.Kind, &kind); err != nil {
		return mxerr.BadJSONf("kind must be a string or null")
	}
	if len(*req.PushKey) == 0 || len(*req.PushKey) > 512 {
		return mxerr.InvalidParamf("pushkey must be 1 to 512 bytes")
	}
	if n := utf8.RuneCountInString(*req.AppID); n == 0 || n > 64 {
		return mxerr.InvalidParamf("app_id must be 1 to 64 characters")
	}
	ctx := r.Context()
	if kind == nil {
		if err := a.p.Store.DeletePusher(ctx, dev.UserID, *req.AppID, *req.PushKey); err != nil {
			return err
		}
		return reply(w, empty)
	}
	if *kind != "http" && *kind != "email" {
		return mxerr.InvalidParamf("kind must be http, email or null")
	}
	if req.AppDisplayName == nil {
		missingParams = append(missingParams, "app_display_name")
	}
	if req.DeviceDisplayName == nil {
		missingParams = append(missingParams, "device_display_name")
	}
	if req.Lang == nil {
		missingParams = append(missingParams, "lang")
	}
	if req.Data == nil || string(req.Data) == "null" {
		missingParams = append(missingParams, "data")
	}
	if len(missingParams) > 0 {
		return mxerr.New(mxerr.MissingParam, "Missing parameters: %s", strings.Join(missingParams, ", "))
	}
	data := bytes.TrimSpace(req.Data)
	var d pusherData
	if data[0] != '{' || json.Unmarshal(data, &d) != nil {
		return mxerr.BadJSONf("data must be an object with string url and format")
	}
	switch *kind {
	case "http":
		if d.URL == nil {
			return mxerr.New(mxerr.MissingParam, "data.url is required for http pushers")
		}
		if err := validGatewayURL(*d.URL); err != nil {
			return err
		}
		if d.Format != nil && *d.Format != "event_id_only" {
			return mxerr.InvalidParamf("data.format must be event_id_only")
		}
	case "email":
		if *req.AppID != "m.email" {
			return mxerr.InvalidParamf("app_id of an email pusher must be m.email")
		}
		if addr, err := mail.ParseAddress(*req.PushKey); err != nil || addr.Address != *req.PushKey {
			return mxerr.InvalidParamf("pushkey of an email pusher must be an email address")
		}
	}
	p := store.Pusher{
		UserID: dev.UserID, Kind: *kind, AppID: *req.AppID, PushKey: *req.PushKey,
		AppDisplayName: *req.AppDisplayName, DeviceDisplayName: *req.DeviceDisplayName,
		ProfileTag: req.ProfileTag, Lang: *req.Lang, Data: data, DeviceID: dev.DeviceID, CreatedTS: nowMS(),
	}
	if err := a.p.Store.SetPusher(ctx, p, req.Append); err != nil {
		return err
	}
	return reply(w, empty)
}

// validGatewayURL checks an http pusher's URL: absolute, http or https,
// with a host and the push gateway API's notify path.
func validGatewayURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return mxerr.InvalidParamf("data.url must be an http(s) URL")
	}
	if u.Path != PushGatewayPath || u.RawQuery != "" || u.Fragment != "" {
		return mxerr.InvalidParamf("data.url must have the path %s", PushGatewayPath)
	}
	return nil
}
