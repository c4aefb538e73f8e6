package main

import (
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func TestPushRules(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	all := alice.Must(200, "GET", "/_matrix/client/v3/pushrules/", nil)
	for _, id := range []string{".m.rule.master", ".m.rule.is_user_mention", ".m.rule.message", ".m.rule.contains_user_name"} {
		if !strings.Contains(string(all.Raw), `"`+id+`"`) {
			t.Fatalf("default rule %s missing", id)
		}
	}
	// Mute a room with a custom room rule.
	room := "!abcdefgh:localhost"
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/pushrules/global/room/%s", room), map[string]any{"actions": []any{}})
	got := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/pushrules/global/room/%s", room), nil)
	if got.Str("rule_id") != room || got.Body["default"] != false {
		t.Fatalf("room rule = %s", got.Raw)
	}
	// Disable a default rule, read it back, change its actions.
	alice.Must(200, "PUT", "/_matrix/client/v3/pushrules/global/underride/.m.rule.message/enabled", map[string]any{"enabled": false})
	if r := alice.Must(200, "GET", "/_matrix/client/v3/pushrules/global/underride/.m.rule.message/enabled", nil); r.Body["enabled"] != false {
		t.Fatalf("enabled = %s", r.Raw)
	}
	alice.Must(200, "PUT", "/_matrix/client/v3/pushrules/global/underride/.m.rule.message/actions", map[string]any{"actions": []any{"notify"}})
	// The effective rules are also account data for /sync.
	pr := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/user/%s/account_data/m.push_rules", alice.UserID), nil)
	if !strings.Contains(string(pr.Raw), room) {
		t.Fatalf("m.push_rules account data = %s", pr.Raw)
	}
	// Refusals.
	alice.MustErr(400, "M_INVALID_PARAM", "DELETE", "/_matrix/client/v3/pushrules/global/override/.m.rule.master", nil)
	alice.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/pushrules/global/override/nope", nil)
	// A kind this server does not know (MSC4306's postcontent) has no
	// rules to read; writing one is still refused.
	alice.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/pushrules/global/postcontent/.io.element.msc4306.rule.subscribed_thread", nil)
	alice.MustErr(400, "M_INVALID_PARAM", "PUT", "/_matrix/client/v3/pushrules/global/postcontent/mine", map[string]any{"actions": []any{"notify"}})
	alice.MustErr(400, "M_INVALID_PARAM", "PUT", "/_matrix/client/v3/pushrules/global/override/.custom", map[string]any{"actions": []any{}})
	alice.MustErr(400, "M_INVALID_PARAM", "PUT", "/_matrix/client/v3/pushrules/global/content/nopattern", map[string]any{"actions": []any{"notify"}})
	alice.MustErr(400, "M_MISSING_PARAM", "PUT", "/_matrix/client/v3/pushrules/global/underride/.m.rule.message/enabled", map[string]any{})
	alice.Must(200, "DELETE", mxtest.Path("/_matrix/client/v3/pushrules/global/room/%s", room), nil)
	alice.MustErr(404, "M_NOT_FOUND", "GET", mxtest.Path("/_matrix/client/v3/pushrules/global/room/%s", room), nil)
}
