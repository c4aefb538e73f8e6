package clientapi

import (
	"net/http"

	"github.com/salonhq/salon/homeserver/events"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// versions lists the spec versions whose endpoints Salon serves and the
// unstable features it implements.
func (a *API) versions(w http.ResponseWriter, r *http.Request) error {
	return reply(w, map[string]any{
		"versions": []string{"r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12"},
		"unstable_features": map[string]bool{
			"org.matrix.msc4140": a.p.Delayed != nil,
			"org.matrix.msc4143": a.p.Config.LiveKitServiceURL != "",
			// Simplified sliding sync (MSC4186), for Element X.
			"org.matrix.simplified_msc3575": a.slidingEnabled(),
			"org.matrix.msc3814":            a.p.Keys != nil,
			// delegated delayed leave (delegate_delayed_leave)
			"io.element.msc4195": a.p.RTCDelegation != nil,
			// use_state_after on /sync
			"org.matrix.msc4222": a.p.Sync != nil,
		},
	})
}

func (a *API) wellKnown(w http.ResponseWriter, r *http.Request) error {
	body := map[string]any{"m.homeserver": map[string]string{"base_url": a.p.Config.BaseURL}}
	if f := a.foci(); len(f) > 0 {
		body["org.matrix.msc4143.rtc_foci"] = f
	}
	if a.p.WellKnown != nil {
		for k, v := range a.p.WellKnown() {
			body[k] = v
		}
	}
	return reply(w, body)
}

func (a *API) capabilities(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	// Every version Salon hosts is stable in the spec.
	available := map[string]string{}
	for _, v := range events.SupportedVersions() {
		available[string(v)] = "stable"
	}
	def := events.DefaultRoomVersion
	if a.p.Rooms != nil {
		def = a.p.Rooms.DefaultVersion()
	}
	return reply(w, map[string]any{"capabilities": map[string]any{
		"m.change_password": map[string]bool{"enabled": true},
		"m.room_versions": map[string]any{
			"default":   string(def),
			"available": available,
		},
		"m.set_displayname": map[string]bool{"enabled": true},
		"m.set_avatar_url":  map[string]bool{"enabled": true},
		"m.3pid_changes":    map[string]bool{"enabled": false},
		"m.get_login_token": map[string]bool{"enabled": false},
	}})
}

func (a *API) serverKeys(w http.ResponseWriter, r *http.Request) error {
	if a.p.ServerKeys == nil {
		return mxerr.NotFoundf("No signing key")
	}
	b, err := a.p.ServerKeys()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return nil
}
