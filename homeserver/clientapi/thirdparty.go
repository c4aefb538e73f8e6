package clientapi

import (
	"net/http"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Third-party lookups ("Third-party Networks" in the Client-Server API)
// are answered by application services bridging other networks. Salon
// runs no bridges, so it knows no protocol: the list is empty and every
// lookup finds nothing, with the spec's M_NOT_FOUND.
func (a *API) thirdPartyRoutes() {
	a.handle(v3+"/thirdparty/protocols", methods{http.MethodGet: a.authed(a.thirdPartyProtocols)})
	a.handle(v3+"/thirdparty/protocol/{protocol}", methods{http.MethodGet: a.authed(a.thirdPartyNotFound("The protocol is unknown"))})
	a.handle(v3+"/thirdparty/location/{protocol}", methods{http.MethodGet: a.authed(a.thirdPartyNotFound("No portal rooms were found"))})
	a.handle(v3+"/thirdparty/user/{protocol}", methods{http.MethodGet: a.authed(a.thirdPartyNotFound("No users were found"))})
	a.handle(v3+"/thirdparty/location", methods{http.MethodGet: a.authed(a.thirdPartyByID("alias", "No third-party locations for this alias"))})
	a.handle(v3+"/thirdparty/user", methods{http.MethodGet: a.authed(a.thirdPartyByID("userid", "No third-party users for this user"))})
}

func (a *API) thirdPartyProtocols(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	return reply(w, empty)
}

func (a *API) thirdPartyNotFound(msg string) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, dev store.Device) error {
		return mxerr.NotFoundf("%s", msg)
	}
}

// thirdPartyByID is a reverse lookup: its query parameter is required.
func (a *API) thirdPartyByID(param, msg string) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, dev store.Device) error {
		if r.URL.Query().Get(param) == "" {
			return missing(param)
		}
		return mxerr.NotFoundf("%s", msg)
	}
}
