package main

import (
	"net/url"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestSyncStateAfter (MSC4222): with use_state_after=true (or its unstable
// name) /sync sends a joined room's state as it is at the end of the
// timeline under state_after (or org.matrix.msc4222.state_after), and no
// state: on an initial sync all of it, on an incremental one every change
// since the token — a state event of the timeline included. Without the
// parameter, state is as before. Both backends.
func TestSyncStateAfter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "name": "Salle"}).Str("room_id")
		stateTypes := func(r mxtest.Response, field string) (got []string, present bool) {
			jr := r.Body["rooms"].(map[string]any)["join"].(map[string]any)[room].(map[string]any)
			list, present := jr[field].(map[string]any)
			if !present {
				return nil, false
			}
			for _, e := range list["events"].([]any) {
				got = append(got, e.(map[string]any)["type"].(string))
			}
			return got, true
		}
		for _, tc := range []struct{ param, field string }{
			{"use_state_after", "state_after"},
			{"org.matrix.msc4222.use_state_after", "org.matrix.msc4222.state_after"},
		} {
			first := alice.Must(200, "GET", "/_matrix/client/v3/sync?"+tc.param+"=true", nil)
			after, ok := stateTypes(first, tc.field)
			if !ok {
				t.Fatalf("%s: no %s: %s", tc.param, tc.field, first.Raw)
			}
			if _, has := stateTypes(first, "state"); has {
				t.Fatalf("%s: state sent beside %s", tc.param, tc.field)
			}
			for _, want := range []string{"m.room.create", "m.room.member", "m.room.power_levels", "m.room.name"} {
				if !slices.Contains(after, want) {
					t.Fatalf("%s: initial %s lacks %s: %v", tc.param, tc.field, want, after)
				}
			}
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", room), map[string]any{"topic": tc.param})
			next := alice.Must(200, "GET", "/_matrix/client/v3/sync?"+tc.param+"=true&since="+url.QueryEscape(first.Str("next_batch")), nil)
			after, _ = stateTypes(next, tc.field)
			timeline := next.Body["rooms"].(map[string]any)["join"].(map[string]any)[room].(map[string]any)["timeline"].(map[string]any)["events"].([]any)
			if !slices.Equal(after, []string{"m.room.topic"}) || len(timeline) != 1 {
				t.Fatalf("%s: incremental %s %v, timeline %d events: %s", tc.param, tc.field, after, len(timeline), next.Raw)
			}
		}
		// Without the parameter: state, no state_after.
		plain := alice.Must(200, "GET", "/_matrix/client/v3/sync", nil)
		if _, has := stateTypes(plain, "state"); !has {
			t.Fatalf("no state without the parameter: %s", plain.Raw)
		}
		if _, has := stateTypes(plain, "state_after"); has {
			t.Fatal("state_after without the parameter")
		}
		alice.MustErr(400, "M_INVALID_PARAM", "GET", "/_matrix/client/v3/sync?use_state_after=yes", nil)
		v := alice.Must(200, "GET", "/_matrix/client/versions", nil)
		if v.Body["unstable_features"].(map[string]any)["org.matrix.msc4222"] != true {
			t.Fatalf("msc4222 not advertised: %s", v.Raw)
		}
	})
}
