package main

import (
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestThirdPartyLookups: Salon runs no bridges, so it offers no protocols
// and every lookup answers the spec's M_NOT_FOUND; all need a login.
func TestThirdPartyLookups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		if r := alice.Must(200, "GET", "/_matrix/client/v3/thirdparty/protocols", nil); r.Body == nil || len(r.Body) != 0 {
			t.Fatalf("protocols = %s", r.Raw)
		}
		for _, p := range []string{
			"/_matrix/client/v3/thirdparty/protocol/irc",
			"/_matrix/client/v3/thirdparty/location/irc?channel=%23matrix",
			"/_matrix/client/v3/thirdparty/user/irc?nick=bob",
			"/_matrix/client/v3/thirdparty/location?alias=%23room:localhost",
			"/_matrix/client/v3/thirdparty/user?userid=@bob:localhost",
		} {
			alice.MustErr(404, "M_NOT_FOUND", "GET", p, nil)
		}
		alice.MustErr(400, "M_MISSING_PARAM", "GET", "/_matrix/client/v3/thirdparty/location", nil)
		alice.MustErr(400, "M_MISSING_PARAM", "GET", "/_matrix/client/v3/thirdparty/user", nil)
		mxtest.New(t, srv.URL).MustErr(401, "M_MISSING_TOKEN", "GET", "/_matrix/client/v3/thirdparty/protocols", nil)
	})
}
