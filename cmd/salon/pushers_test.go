package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func httpPusher(key string) map[string]any {
	return map[string]any{
		"kind": "http", "app_id": "org.example.app", "pushkey": key,
		"app_display_name": "Example", "device_display_name": "Phone", "lang": "en",
		"data": map[string]any{"url": "https://push.example.org/_matrix/push/v1/notify", "format": "event_id_only"},
	}
}

func pusherKeys(c *mxtest.Client) []string {
	c.T.Helper()
	var out []string
	for _, p := range c.Must(200, "GET", "/_matrix/client/v3/pushers", nil).Body["pushers"].([]any) {
		out = append(out, p.(map[string]any)["pushkey"].(string))
	}
	return out
}

// TestPushers: set, list, update, append, delete, and the spec's errors.
func TestPushers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		if got := pusherKeys(alice); len(got) != 0 {
			t.Fatalf("new user has pushers %v", got)
		}
		alice.Must(200, "POST", "/_matrix/client/v3/pushers/set", httpPusher("k1"))
		alice.Must(200, "POST", "/_matrix/client/v3/pushers/set", map[string]any{
			"kind": "email", "app_id": "m.email", "pushkey": "alice@example.org",
			"app_display_name": "Email", "device_display_name": "alice@example.org", "lang": "en", "data": map[string]any{},
		})
		upd := httpPusher("k1")
		upd["lang"], upd["profile_tag"] = "fr", "tag1"
		alice.Must(200, "POST", "/_matrix/client/v3/pushers/set", upd)
		list := alice.Must(200, "GET", "/_matrix/client/v3/pushers", nil).Body["pushers"].([]any)
		if len(list) != 2 {
			t.Fatalf("pushers: %v", list)
		}
		byKey := map[string]map[string]any{}
		for _, x := range list {
			byKey[x.(map[string]any)["pushkey"].(string)] = x.(map[string]any)
		}
		p := byKey["k1"]
		if p["pushkey"] != "k1" || p["kind"] != "http" || p["lang"] != "fr" || p["profile_tag"] != "tag1" || p["app_display_name"] != "Example" ||
			p["data"].(map[string]any)["url"] != "https://push.example.org/_matrix/push/v1/notify" || p["data"].(map[string]any)["format"] != "event_id_only" {
			t.Fatalf("pusher: %v", p)
		}
		if byKey["alice@example.org"]["kind"] != "email" {
			t.Fatalf("email pusher: %v", byKey)
		}
		if got := pusherKeys(bob); len(got) != 0 {
			t.Fatalf("bob sees %v", got)
		}

		// The same app and key for bob: with append alice keeps hers,
		// without it the key moves to bob.
		withAppend := httpPusher("k1")
		withAppend["append"] = true
		bob.Must(200, "POST", "/_matrix/client/v3/pushers/set", withAppend)
		if len(pusherKeys(alice)) != 2 || len(pusherKeys(bob)) != 1 {
			t.Fatal("append")
		}
		bob.Must(200, "POST", "/_matrix/client/v3/pushers/set", httpPusher("k1"))
		if got := pusherKeys(alice); len(got) != 1 || got[0] != "alice@example.org" {
			t.Fatalf("without append alice keeps %v", got)
		}

		// kind null deletes.
		bob.Must(200, "POST", "/_matrix/client/v3/pushers/set", map[string]any{"kind": nil, "app_id": "org.example.app", "pushkey": "k1"})
		if got := pusherKeys(bob); len(got) != 0 {
			t.Fatalf("after delete: %v", got)
		}

		bad := func(code string, edit func(map[string]any)) {
			t.Helper()
			b := httpPusher("kb")
			edit(b)
			alice.MustErr(400, code, "POST", "/_matrix/client/v3/pushers/set", b)
		}
		bad("M_MISSING_PARAM", func(b map[string]any) { delete(b, "kind") })
		bad("M_MISSING_PARAM", func(b map[string]any) { delete(b, "app_id") })
		bad("M_MISSING_PARAM", func(b map[string]any) { delete(b, "pushkey") })
		bad("M_MISSING_PARAM", func(b map[string]any) { delete(b, "lang") })
		bad("M_MISSING_PARAM", func(b map[string]any) { delete(b, "data") })
		bad("M_MISSING_PARAM", func(b map[string]any) { b["data"] = map[string]any{} })
		bad("M_INVALID_PARAM", func(b map[string]any) { b["kind"] = "sms" })
		bad("M_BAD_JSON", func(b map[string]any) { b["kind"] = 3 })
		bad("M_BAD_JSON", func(b map[string]any) { b["data"] = "x" })
		bad("M_INVALID_PARAM", func(b map[string]any) { b["data"] = map[string]any{"url": "https://push.example.org/notify"} })
		bad("M_INVALID_PARAM", func(b map[string]any) {
			b["data"] = map[string]any{"url": "ftp://push.example.org/_matrix/push/v1/notify"}
		})
		bad("M_INVALID_PARAM", func(b map[string]any) { b["data"] = map[string]any{"url": "/_matrix/push/v1/notify"} })
		bad("M_INVALID_PARAM", func(b map[string]any) { b["data"] = map[string]any{"url": "not a url at all"} })
		bad("M_INVALID_PARAM", func(b map[string]any) {
			b["data"] = map[string]any{"url": "https://push.example.org/_matrix/push/v1/notify", "format": "full"}
		})
		bad("M_INVALID_PARAM", func(b map[string]any) { b["pushkey"] = strings.Repeat("k", 513) })
		bad("M_INVALID_PARAM", func(b map[string]any) {
			b["app_id"] = "a.very.long.app.id.that.goes.on.and.on.and.on.beyond.sixty.four.chars"
		})
		bad("M_INVALID_PARAM", func(b map[string]any) { b["kind"], b["pushkey"] = "email", "bob@example.org" })
		bad("M_INVALID_PARAM", func(b map[string]any) { b["kind"], b["app_id"], b["pushkey"] = "email", "m.email", "not an address" })
		alice.MustErr(400, "M_NOT_JSON", "POST", "/_matrix/client/v3/pushers/set", "{")
		mxtest.New(t, srv.URL).MustErr(401, "M_MISSING_TOKEN", "GET", "/_matrix/client/v3/pushers", nil)
		if got := pusherKeys(alice); len(got) != 1 {
			t.Fatalf("refused requests changed pushers: %v", got)
		}

		// Logging a device out removes the pushers it set: a signed-out
		// phone gets no more notifications.
		phone := mxtest.Login(t, srv.URL, "alice", "password alice")
		phone.Must(200, "POST", "/_matrix/client/v3/pushers/set", httpPusher("phone-key"))
		if got := pusherKeys(alice); len(got) != 2 {
			t.Fatalf("with the phone's pusher: %v", got)
		}
		phone.Must(200, "POST", "/_matrix/client/v3/logout", map[string]any{})
		if got := pusherKeys(alice); len(got) != 1 || got[0] != "alice@example.org" {
			t.Fatalf("after the phone logged out: %v", got)
		}
		// A password change that logs the other devices out removes
		// their pushers, not those of the device that changed it.
		tablet := mxtest.Login(t, srv.URL, "alice", "password alice")
		tablet.Must(200, "POST", "/_matrix/client/v3/pushers/set", httpPusher("tablet-key"))
		alice.Must(200, "POST", "/_matrix/client/v3/pushers/set", httpPusher("own-key"))
		alice.Must(200, "POST", "/_matrix/client/v3/account/password", map[string]any{"new_password": "new password alice",
			"auth": map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "password alice"}})
		if got := pusherKeys(alice); !slices.Contains(got, "own-key") || slices.Contains(got, "tablet-key") || len(got) != 2 {
			t.Fatalf("after the password change: %v", got)
		}
	})
}
