package clientapi

import (
	"strings"
	"testing"
)

// TestDelayedEventHandlers: MSC4140 delayed events are scheduled for
// one's own rooms with a positive delay and object content, listed to
// their owner, and cancelled once by their delay ID.
func TestDelayedEventHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	room := ts.createRoom(a, `{}`)
	put := "/rooms/" + room + "/delayed_event/m.room.message/"
	body := `{"delay":600000,"content":{"msgtype":"m.text","body":"later"}}`
	sched := ts.must(ts.v3(a, "PUT", put+"d1", body))
	id := sched.str("delay_id")
	if id == "" {
		t.Fatalf("no delay_id in %s", sched.raw)
	}
	const v1d = v1 + "/delayed_events"
	ts.run(t, []tableCase{
		{"same txn same delay", a, "PUT", put + "d1", body, expectation{200, "", id}},
		{"listed", a, "GET", v1d, "", expectation{200, "", id}},
		{"not listed to another user", b, "GET", v1d, "", expectation{200, "", `"delayed_events":[]`}},
		{"missing delay", a, "PUT", put + "d2", `{"content":{}}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"content not an object", a, "PUT", put + "d3", `{"delay":5,"content":[1]}`, expectation{400, "M_BAD_JSON", ""}},
		{"delay not positive", a, "PUT", put + "d4", `{"delay":0,"content":{}}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"delay not a number", a, "PUT", put + "d5", `{"delay":"soon","content":{}}`, expectation{400, "M_BAD_JSON", ""}},
		{"another user's room", b, "PUT", put + "d6", body, expectation{403, "M_FORBIDDEN", ""}},
		{"unknown action is an unknown endpoint", user{}, "POST", v1d + "/" + id + "/explode", `{}`, expectation{404, "M_UNRECOGNIZED", ""}},
		{"unknown delay ID", user{}, "POST", v1d + "/nope/cancel", `{}`, expectation{404, "M_NOT_FOUND", ""}},
		{"cancel", user{}, "POST", v1d + "/" + id + "/cancel", `{}`, expectation{200, "", ""}},
		{"no longer scheduled", a, "GET", v1d + "?status=scheduled", "", expectation{200, "", `"delayed_events":[]`}},
		{"listed as finalised", a, "GET", v1d + "?status=finalised", "", expectation{200, "", id}},
		{"bad status", a, "GET", v1d + "?status=sometime", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"cancel retried", user{}, "POST", v1d + "/" + id + "/cancel", `{}`, expectation{200, "", ""}},
		{"restart after cancel", user{}, "POST", v1d + "/" + id + "/restart", `{}`, expectation{409, "M_UNKNOWN", "cancelled"}},
		{"restart after cancel, unstable path", user{}, "POST", msc4140 + "/delayed_events/" + id + "/restart", `{}`, expectation{404, "M_NOT_FOUND", ""}},
	})
	t.Run("cancelled event never sent", func(t *testing.T) {
		if strings.Contains(ts.must(ts.v3(a, "GET", "/rooms/"+room+"/messages?limit=5", "")).raw, "later") {
			t.Fatal("a cancelled delayed event was sent")
		}
	})
}
