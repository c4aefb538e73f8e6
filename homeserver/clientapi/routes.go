package clientapi

import (
	"net/http"

	"github.com/salonhq/salon/homeserver/store"
)

const (
	v3 = "/_matrix/client/v3"
	v1 = "/_matrix/client/v1"
	// r0 is the prefix before Matrix 1.1; see handle.
	r0 = "/_matrix/client/r0"
)

func (a *API) routes() {

	// Discovery.
	a.handle("/_matrix/client/versions", methods{http.MethodGet: a.versions})
	a.handle("/.well-known/matrix/client", methods{http.MethodGet: a.wellKnown})
	a.handle(v3+"/capabilities", methods{http.MethodGet: a.authed(a.capabilities)})
	a.handle("/_matrix/key/v2/server", methods{http.MethodGet: a.serverKeys})

	// Accounts and sessions.
	a.handle(v3+"/login", methods{http.MethodGet: a.loginFlows, http.MethodPost: a.login})
	a.handle(v3+"/register", methods{http.MethodPost: a.register})
	a.handle(v3+"/register/available", methods{http.MethodGet: a.registerAvailable})
	a.handle(v1+"/register/m.login.registration_token/validity", methods{http.MethodGet: a.registrationTokenValidity})
	a.handle(v3+"/logout", methods{http.MethodPost: a.authed(a.logout)})
	a.handle(v3+"/logout/all", methods{http.MethodPost: a.authed(a.logoutAll)})
	a.handle(v3+"/account/whoami", methods{http.MethodGet: a.authed(a.whoami)})
	a.handle(v3+"/account/password", methods{http.MethodPost: a.authed(a.changePassword)})
	a.handle(v3+"/account/deactivate", methods{http.MethodPost: a.authed(a.deactivate)})

	// Devices.
	a.handle(v3+"/devices", methods{http.MethodGet: a.authed(a.listDevices)})
	a.handle(v3+"/devices/{deviceId}", methods{
		http.MethodGet:    a.authed(a.getDevice),
		http.MethodPut:    a.authed(a.putDevice),
		http.MethodDelete: a.authed(a.deleteDevice),
	})
	a.handle(v3+"/delete_devices", methods{http.MethodPost: a.authed(a.deleteDevices)})

	// Profiles.
	a.handle(v3+"/profile/{userId}", methods{http.MethodGet: a.getProfile})
	a.handle(v3+"/profile/{userId}/{field}", methods{http.MethodGet: a.getProfileField, http.MethodPut: a.authed(a.putProfileField)})

	a.handle(v3+"/voip/turnServer", methods{http.MethodGet: a.authed(a.turnServer)})

	a.roomRoutes()
	a.userDataRoutes()
	a.pushRoutes()
	a.rtcRoutes()
	a.spaceRoutes()
	a.syncRoutes()
	a.keyRoutes()
	a.thirdPartyRoutes()
	a.searchRoutes()
	a.pusherRoutes()
	a.refreshRoutes()
	a.threadRoutes()
	a.notificationRoutes()
	a.keyBackupRoutes()
	a.ssoRoutes()
}

// turnServer hands a logged-in user TURN credentials (TURN REST API form,
// the same as coturn's use-auth-secret) for the device asking, or {} when
// no relay is set up.
func (a *API) turnServer(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	if a.p.TURN == nil {
		return reply(w, empty)
	}
	t, ok := a.p.TURN(dev.UserID, dev.DeviceID)
	if !ok {
		return reply(w, empty)
	}
	return reply(w, map[string]any{
		"username": t.Username, "password": t.Password, "uris": t.URIs, "ttl": int64(t.TTL.Seconds()),
	})
}
