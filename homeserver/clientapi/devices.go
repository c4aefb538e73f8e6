package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

type deviceJSON struct {
	DeviceID    string  `json:"device_id"`
	DisplayName *string `json:"display_name,omitempty"`
	LastSeenIP  string  `json:"last_seen_ip,omitempty"`
	LastSeenTS  int64   `json:"last_seen_ts,omitempty"`
}

func toDeviceJSON(d store.Device) deviceJSON {
	j := deviceJSON{DeviceID: d.DeviceID, LastSeenIP: d.LastSeenIP, LastSeenTS: d.LastSeenTS}
	if d.DisplayName != "" {
		j.DisplayName = &d.DisplayName
	}
	return j
}

func (a *API) listDevices(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	list, err := a.p.Store.Devices(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	out := make([]deviceJSON, len(list))
	for i, d := range list {
		out[i] = toDeviceJSON(d)
	}
	return reply(w, map[string]any{"devices": out})
}

func (a *API) ownDevice(r *http.Request, dev store.Device) (store.Device, error) {
	d, err := a.p.Store.Device(r.Context(), dev.UserID, r.PathValue("deviceId"))
	if errors.Is(err, store.ErrNotFound) {
		return d, mxerr.NotFoundf("Unknown device")
	}
	return d, err
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	d, err := a.ownDevice(r, dev)
	if err != nil {
		return err
	}
	return reply(w, toDeviceJSON(d))
}

func (a *API) putDevice(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		DisplayName *string `json:"display_name"`
	}
	if err := a.decode(r, &req, true); err != nil {
		return err
	}
	if _, err := a.ownDevice(r, dev); err != nil {
		return err
	}
	if req.DisplayName != nil {
		if len(*req.DisplayName) > 1000 {
			return mxerr.InvalidParamf("display_name is too long")
		}
		if err := a.p.Store.SetDeviceName(r.Context(), dev.UserID, r.PathValue("deviceId"), *req.DisplayName); err != nil {
			return err
		}
	}
	return reply(w, empty)
}

func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		Auth json.RawMessage `json:"auth"`
	}
	if err := a.decode(r, &req, true); err != nil {
		return err
	}
	id := r.PathValue("deviceId")
	if _, err := a.ownDevice(r, dev); err != nil {
		return err
	}
	if err := a.interactiveUser(r.Context(), req.Auth, "delete_device:"+dev.UserID+":"+id, dev); err != nil {
		return err
	}
	if err := a.p.Auth.DeleteDevices(r.Context(), dev.UserID, []string{id}, ""); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) deleteDevices(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		Auth    json.RawMessage `json:"auth"`
		Devices []string        `json:"devices"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.Devices == nil {
		return missing("devices")
	}
	if len(req.Devices) > 1000 {
		return mxerr.InvalidParamf("Too many devices in one request")
	}
	if err := a.interactiveUser(r.Context(), req.Auth, "delete_devices:"+dev.UserID, dev); err != nil {
		return err
	}
	if err := a.p.Auth.DeleteDevices(r.Context(), dev.UserID, req.Devices, ""); err != nil {
		return err
	}
	return reply(w, empty)
}
