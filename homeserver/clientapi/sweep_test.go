package clientapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestNoServerErrors: every route, with its path parameters filled with
// real and made-up values and bodies of every JSON shape, answers with a
// Matrix error or success, never a 5xx.
func TestNoServerErrors(t *testing.T) {
	ts := newTestServer(t)
	room := ts.createRoom(ts.alice, `{"preset":"public_chat","room_alias_name":"sweep"}`)
	ev := ts.send(ts.alice, room, "s", `{"msgtype":"m.text","body":"x"}`)
	fills := map[string][]string{
		"roomId": {room, "!unknown:hs", "x"}, "roomIdOrAlias": {room, "#sweep:hs", "#x"}, "eventId": {ev, "$nope", "x"},
		"userId": {"@alice:hs", "@bob:hs", "x"}, "eventType": {"m.room.message", "m.room.member", "m.room.create"},
		"stateKey...": {"", "@alice:hs"}, "txnId": {"t"}, "relType": {"m.thread", "x"}, "deviceId": {"BOBDEV", "ALICEDEV", "x"}, "roomAlias": {"#sweep:hs", "#x:elsewhere", "x"},
	}
	bodies := []string{"", `{`, `[]`, `null`, `"s"`, `5`, `{}`, `{"user_id":5,"room_id":[],"limit":-1,"messages":{"@bob:hs":5}}`}
	n := 0
	for _, rt := range ts.api.Routes() {
		// r0 repeats v3; sessions ending would end the sweep; the sync
		// endpoints wait.
		if strings.HasPrefix(rt.Path, r0) || strings.Contains(rt.Path, "logout") || strings.Contains(rt.Path, "deactivate") ||
			strings.Contains(rt.Path, "sync") || strings.Contains(rt.Path, "password") {
			continue
		}
		paths := []string{rt.Path}
		for {
			i := strings.Index(paths[0], "{")
			if i < 0 {
				break
			}
			j := strings.Index(paths[0][i:], "}")
			name := paths[0][i+1 : i+j]
			vals := fills[name]
			if vals == nil {
				vals = []string{"x"}
			}
			var next []string
			for _, p := range paths {
				for _, v := range vals {
					next = append(next, strings.Replace(p, "{"+name+"}", url.PathEscape(v), 1))
				}
			}
			paths = next
		}
		for _, m := range rt.Methods {
			for _, p := range paths {
				for _, b := range bodies {
					if (m == http.MethodGet && b != "") || (m == http.MethodDelete && strings.Contains(p, "/devices/")) {
						continue
					}
					for _, u := range []user{ts.bob, ts.alice} {
						n++
						if got := ts.do(u, m, p, b); got.status >= 500 {
							t.Errorf("%s %s %s %q: %d %s", u.id, m, p, b, got.status, got.raw)
						}
					}
				}
			}
		}
	}
	if n < 1000 {
		t.Fatalf("the sweep sent only %d requests", n)
	}
}
