package clientapi

import (
	"testing"
)

// TestPushRuleHandlers: a user's rules are listed with the defaults, a
// rule they add reads back and can be disabled and deleted; default rules
// cannot be deleted and unknown ones are not found.
func TestPushRuleHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	rule := "/pushrules/global/override/x.mute"
	ts.run(t, []tableCase{
		{"defaults listed", a, "GET", "/pushrules/", "", expectation{200, "", `".m.rule.master"`}},
		{"global listed bare", a, "GET", "/pushrules/global/", "", expectation{200, "", `"override":[`}},
		{"unknown rule", a, "GET", rule, "", expectation{404, "M_NOT_FOUND", ""}},
		{"add rule", a, "PUT", rule, `{"actions":[],"conditions":[{"kind":"event_match","key":"type","pattern":"x.noise"}]}`, expectation{200, "", ""}},
		{"rule read", a, "GET", rule, "", expectation{200, "", `"pattern":"x.noise"`}},
		{"rule is per user", b, "GET", rule, "", expectation{404, "M_NOT_FOUND", ""}},
		{"rule actions not a list", a, "PUT", rule, `{"actions":"notify"}`, expectation{400, "M_BAD_JSON", ""}},
		{"enabled", a, "GET", rule + "/enabled", "", expectation{200, "", `"enabled":true`}},
		{"disable", a, "PUT", rule + "/enabled", `{"enabled":false}`, expectation{200, "", ""}},
		{"disabled", a, "GET", rule + "/enabled", "", expectation{200, "", `"enabled":false`}},
		{"enabled missing", a, "PUT", rule + "/enabled", `{}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"actions missing", a, "PUT", rule + "/actions", `{}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"unknown attribute", a, "GET", rule + "/colour", "", expectation{404, "M_UNRECOGNIZED", ""}},
		{"delete a default rule", a, "DELETE", "/pushrules/global/override/.m.rule.master", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"delete", a, "DELETE", rule, "", expectation{200, "", ""}},
		{"deleted", a, "GET", rule, "", expectation{404, "M_NOT_FOUND", ""}},
	})
}

// TestPusherHandlers: an http pusher needs its gateway's URL and path; one
// set is listed for its owner only.
func TestPusherHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	good := `{"kind":"http","app_id":"x.app","pushkey":"k1","app_display_name":"X","device_display_name":"phone","lang":"en",` +
		`"data":{"url":"https://push.example` + PushGatewayPath + `"}}`
	ts.run(t, []tableCase{
		{"none", a, "GET", "/pushers", "", expectation{200, "", `"pushers":[]`}},
		{"missing fields", a, "POST", "/pushers/set", `{"kind":"http"}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"unknown kind", a, "POST", "/pushers/set", `{"kind":"pigeon","app_id":"x","pushkey":"k","app_display_name":"X","device_display_name":"p","lang":"en","data":{}}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"gateway path wrong", a, "POST", "/pushers/set", `{"kind":"http","app_id":"x","pushkey":"k","app_display_name":"X","device_display_name":"p","lang":"en","data":{"url":"https://push.example/other"}}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"set", a, "POST", "/pushers/set", good, expectation{200, "", ""}},
		{"listed", a, "GET", "/pushers", "", expectation{200, "", `"pushkey":"k1"`}},
		{"not another user's", b, "GET", "/pushers", "", expectation{200, "", `"pushers":[]`}},
		{"removed", a, "POST", "/pushers/set", `{"kind":null,"app_id":"x.app","pushkey":"k1"}`, expectation{200, "", ""}},
		{"gone", a, "GET", "/pushers", "", expectation{200, "", `"pushers":[]`}},
	})
}

// TestKeyBackupHandlers: a backup version is created, read, and keys put
// in it read back; another user's version is not found.
func TestKeyBackupHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	created := ts.must(ts.v3(a, "POST", "/room_keys/version", `{"algorithm":"m.megolm_backup.v1.curve25519-aes-sha2","auth_data":{"public_key":"pk"}}`))
	ver := created.str("version")
	if ver == "" {
		t.Fatalf("no version in %s", created.raw)
	}
	session := `{"first_message_index":0,"forwarded_count":0,"is_verified":true,"session_data":{"ciphertext":"c"}}`
	ts.run(t, []tableCase{
		{"latest", a, "GET", "/room_keys/version", "", expectation{200, "", `"version":"` + ver + `"`}},
		{"by version", a, "GET", "/room_keys/version/" + ver, "", expectation{200, "", `"public_key":"pk"`}},
		{"none for another user", b, "GET", "/room_keys/version", "", expectation{404, "M_NOT_FOUND", ""}},
		{"another user's version", b, "GET", "/room_keys/version/" + ver, "", expectation{404, "M_NOT_FOUND", ""}},
		{"keys without version", a, "GET", "/room_keys/keys", "", expectation{400, "M_MISSING_PARAM", ""}},
		{"put session", a, "PUT", "/room_keys/keys/!r:hs/s1?version=" + ver, session, expectation{200, "", `"count":1`}},
		{"session read", a, "GET", "/room_keys/keys/!r:hs/s1?version=" + ver, "", expectation{200, "", `"ciphertext":"c"`}},
		{"unknown session", a, "GET", "/room_keys/keys/!r:hs/s2?version=" + ver, "", expectation{404, "M_NOT_FOUND", ""}},
		{"sessions not an object", a, "PUT", "/room_keys/keys/!r:hs?version=" + ver, `{"sessions":[]}`, expectation{400, "M_BAD_JSON", ""}},
		{"rooms not an object", a, "PUT", "/room_keys/keys?version=" + ver, `{"rooms":5}`, expectation{400, "M_BAD_JSON", ""}},
		{"delete version", a, "DELETE", "/room_keys/version/" + ver, "", expectation{200, "", ""}},
		{"deleted", a, "GET", "/room_keys/version/" + ver, "", expectation{404, "M_NOT_FOUND", ""}},
	})
}
