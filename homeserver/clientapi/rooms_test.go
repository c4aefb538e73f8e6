package clientapi

import (
	"net/url"
	"strings"
	"testing"
)

// TestCreateRoomHandler: createRoom refuses malformed bodies with the
// Matrix error the spec names and makes the room (with its alias) when the
// body is good.
func TestCreateRoomHandler(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		name, body string
		want       expectation
	}{
		{"not JSON", `{`, expectation{400, "M_NOT_JSON", ""}},
		{"name not a string", `{"name":5}`, expectation{400, "M_BAD_JSON", ""}},
		{"unknown preset", `{"preset":"everyone"}`, expectation{400, "M_BAD_JSON", "preset"}},
		{"unknown visibility", `{"visibility":"secret"}`, expectation{400, "M_BAD_JSON", "visibility"}},
		{"unsupported room version", `{"room_version":"999"}`, expectation{400, "M_UNSUPPORTED_ROOM_VERSION", ""}},
		{"creation_content not an object", `{"creation_content":[1]}`, expectation{400, "M_BAD_JSON", ""}},
		{"initial state not an object", `{"initial_state":[{"type":"m.room.topic","state_key":"","content":"x"}]}`, expectation{400, "M_BAD_JSON", ""}},
		{"bad alias name", `{"room_alias_name":"a:b"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"good", `{"name":"Lounge","room_alias_name":"lounge","preset":"public_chat"}`, expectation{200, "", `"room_alias":"#lounge:hs"`}},
		{"alias taken", `{"room_alias_name":"lounge"}`, expectation{400, "M_ROOM_IN_USE", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.check(t, ts.v3(ts.alice, "POST", "/createRoom", tc.body), tc.want)
		})
	}
	t.Run("anonymous", func(t *testing.T) {
		ts.check(t, ts.v3(user{}, "POST", "/createRoom", `{}`), expectation{401, "M_MISSING_TOKEN", ""})
	})
	t.Run("name visible afterwards", func(t *testing.T) {
		id := ts.createRoom(ts.alice, `{"name":"Kitchen"}`)
		ts.check(t, ts.v3(ts.alice, "GET", "/rooms/"+id+"/state/m.room.name", ""), expectation{200, "", `"name":"Kitchen"`})
	})
}

// TestRoomEventHandlers: send, state and redact check the path and body,
// answer for what the room's rules allow, and what they wrote is read back.
func TestRoomEventHandlers(t *testing.T) {
	ts := newTestServer(t)
	room := ts.createRoom(ts.alice, `{"preset":"private_chat"}`)
	ev := ts.send(ts.alice, room, "t1", `{"msgtype":"m.text","body":"hello"}`)
	for _, tc := range []struct {
		name   string
		as     user
		method string
		path   string
		body   string
		want   expectation
	}{
		{"send invalid room", ts.alice, "PUT", "/rooms/nope/send/m.room.message/t", `{}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"send not JSON", ts.alice, "PUT", "/rooms/" + room + "/send/m.room.message/t2", `{"a"`, expectation{400, "M_NOT_JSON", ""}},
		{"send body not an object", ts.alice, "PUT", "/rooms/" + room + "/send/m.room.message/t3", `[1]`, expectation{400, "M_BAD_JSON", ""}},
		{"send to another user's room", ts.bob, "PUT", "/rooms/" + room + "/send/m.room.message/t", `{"body":"hi"}`, expectation{403, "M_FORBIDDEN", ""}},
		{"send to unknown room", ts.alice, "PUT", "/rooms/!unknown:hs/send/m.room.message/t", `{"body":"hi"}`, expectation{403, "M_FORBIDDEN", ""}},
		{"same txn same event", ts.alice, "PUT", "/rooms/" + room + "/send/m.room.message/t1", `{"msgtype":"m.text","body":"hello"}`, expectation{200, "", ev}},
		{"get event", ts.alice, "GET", "/rooms/" + room + "/event/" + url.PathEscape(ev), "", expectation{200, "", `"body":"hello"`}},
		{"get unknown event", ts.alice, "GET", "/rooms/" + room + "/event/$nope", "", expectation{404, "M_NOT_FOUND", ""}},
		{"get event of another user's room", ts.bob, "GET", "/rooms/" + room + "/event/" + url.PathEscape(ev), "", expectation{404, "M_NOT_FOUND", ""}},
		{"put topic", ts.alice, "PUT", "/rooms/" + room + "/state/m.room.topic", `{"topic":"plans"}`, expectation{200, "", "event_id"}},
		{"topic read back", ts.alice, "GET", "/rooms/" + room + "/state/m.room.topic", "", expectation{200, "", `"topic":"plans"`}},
		{"topic read back with empty key", ts.alice, "GET", "/rooms/" + room + "/state/m.room.topic/", "", expectation{200, "", `"topic":"plans"`}},
		{"state not JSON", ts.alice, "PUT", "/rooms/" + room + "/state/m.room.topic", `x`, expectation{400, "M_NOT_JSON", ""}},
		{"unset state", ts.alice, "GET", "/rooms/" + room + "/state/x.nothing", "", expectation{404, "M_NOT_FOUND", ""}},
		{"state of another user's room", ts.bob, "GET", "/rooms/" + room + "/state/m.room.topic", "", expectation{403, "M_FORBIDDEN", ""}},
		{"whole state of another user's room", ts.bob, "GET", "/rooms/" + room + "/state", "", expectation{403, "M_FORBIDDEN", ""}},
		{"whole state", ts.alice, "GET", "/rooms/" + room + "/state", "", expectation{200, "", `"m.room.create"`}},
		{"state in another user's room", ts.bob, "PUT", "/rooms/" + room + "/state/m.room.topic", `{"topic":"mine"}`, expectation{403, "M_FORBIDDEN", ""}},
		{"redact in another user's room", ts.bob, "PUT", "/rooms/" + room + "/redact/" + url.PathEscape(ev) + "/r1", `{}`, expectation{403, "M_FORBIDDEN", ""}},
		{"redact bad body", ts.alice, "PUT", "/rooms/" + room + "/redact/" + url.PathEscape(ev) + "/r1", `{"reason":5}`, expectation{400, "M_BAD_JSON", ""}},
		{"redact", ts.alice, "PUT", "/rooms/" + room + "/redact/" + url.PathEscape(ev) + "/r1", `{"reason":"oops"}`, expectation{200, "", "event_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.check(t, ts.v3(tc.as, tc.method, tc.path, tc.body), tc.want)
		})
	}
	t.Run("redacted content gone", func(t *testing.T) {
		a := ts.must(ts.v3(ts.alice, "GET", "/rooms/"+room+"/event/"+url.PathEscape(ev), ""))
		if strings.Contains(a.raw, "hello") || !strings.Contains(a.raw, "redacted_because") {
			t.Fatalf("redacted event reads %s", a.raw)
		}
	})
}

// TestRoomReadHandlers: /messages, /context, /members and /joined_members
// refuse bad parameters and outsiders and list what the room holds.
func TestRoomReadHandlers(t *testing.T) {
	ts := newTestServer(t)
	room := ts.createRoom(ts.alice, `{"preset":"public_chat"}`)
	private := ts.createRoom(ts.alice, `{"preset":"private_chat"}`)
	ts.must(ts.v3(ts.bob, "POST", "/join/"+room, `{}`))
	var ids []string
	for i, b := range []string{"one", "two", "three"} {
		ids = append(ids, ts.send(ts.alice, room, "m"+string(rune('0'+i)), `{"msgtype":"m.text","body":"`+b+`"}`))
	}
	msgs := "/rooms/" + room + "/messages"
	ctx := "/rooms/" + room + "/context/" + url.PathEscape(ids[1])
	for _, tc := range []struct {
		name string
		as   user
		path string
		want expectation
	}{
		{"messages bad dir", ts.alice, msgs + "?dir=up", expectation{400, "M_INVALID_PARAM", "dir"}},
		{"messages negative limit", ts.alice, msgs + "?limit=-1", expectation{400, "M_INVALID_PARAM", "limit"}},
		{"messages limit not a number", ts.alice, msgs + "?limit=ten", expectation{400, "M_INVALID_PARAM", "limit"}},
		{"messages bad from", ts.alice, msgs + "?from=garbage", expectation{400, "M_INVALID_PARAM", "token"}},
		{"messages bad to", ts.alice, msgs + "?to=garbage", expectation{400, "M_INVALID_PARAM", "token"}},
		{"messages bad filter", ts.alice, msgs + "?filter=" + url.QueryEscape("{"), expectation{400, "M_BAD_JSON", "not valid JSON"}},
		{"messages invalid room", ts.alice, "/rooms/x/messages", expectation{400, "M_INVALID_PARAM", ""}},
		{"messages of another user's room", ts.bob, "/rooms/" + private + "/messages", expectation{403, "M_FORBIDDEN", ""}},
		{"messages newest first", ts.alice, msgs + "?limit=1", expectation{200, "", `"body":"three"`}},
		{"messages filtered by type", ts.alice, msgs + "?filter=" + url.QueryEscape(`{"types":["m.room.topic"]}`), expectation{200, "", `"chunk":[]`}},
		{"context", ts.alice, ctx + "?limit=2", expectation{200, "", `"body":"two"`}},
		{"context before", ts.alice, ctx + "?limit=2", expectation{200, "", `"body":"one"`}},
		{"context after", ts.alice, ctx + "?limit=2", expectation{200, "", `"body":"three"`}},
		{"context negative limit", ts.alice, ctx + "?limit=-2", expectation{400, "M_INVALID_PARAM", "limit"}},
		{"context bad filter", ts.alice, ctx + "?filter=" + url.QueryEscape(`{"limit":"x"}`), expectation{400, "M_BAD_JSON", ""}},
		{"context unknown event", ts.alice, "/rooms/" + room + "/context/$nope", expectation{404, "M_NOT_FOUND", ""}},
		{"context in another user's room", ts.bob, "/rooms/" + private + "/context/" + url.PathEscape(ids[1]), expectation{403, "M_FORBIDDEN", ""}},
		{"members", ts.alice, "/rooms/" + room + "/members", expectation{200, "", `"state_key":"@bob:hs"`}},
		{"members not joined", ts.alice, "/rooms/" + room + "/members?not_membership=join", expectation{200, "", `"chunk":[]`}},
		{"members bad at", ts.alice, "/rooms/" + room + "/members?at=garbage", expectation{400, "M_INVALID_PARAM", ""}},
		{"members of another user's room", ts.bob, "/rooms/" + private + "/members", expectation{403, "M_FORBIDDEN", ""}},
		{"joined members", ts.alice, "/rooms/" + room + "/joined_members", expectation{200, "", `"@bob:hs"`}},
		{"joined members of another user's room", ts.bob, "/rooms/" + private + "/joined_members", expectation{403, "M_FORBIDDEN", ""}},
		{"joined rooms", ts.bob, "/joined_rooms", expectation{200, "", room}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.check(t, ts.v3(tc.as, "GET", tc.path, ""), tc.want)
		})
	}
	t.Run("messages paging ends", func(t *testing.T) {
		// Paging back from each page's end reaches the room's start and
		// stops: an empty chunk without an end.
		from := ""
		for range 20 {
			a := ts.must(ts.v3(ts.alice, "GET", msgs+"?limit=3&from="+url.QueryEscape(from), ""))
			end := a.str("end")
			if end == "" {
				if chunk, _ := a.body["chunk"].([]any); len(chunk) != 0 {
					t.Fatalf("page without end holds %d events", len(chunk))
				}
				return
			}
			from = end
		}
		t.Fatal("paging back never ended")
	})
}

// TestMembersAtAndLazyLoading: /members?at= lists the members as they
// were at a /messages token, and /messages with lazy_load_members sends
// the senders' member events alongside the chunk.
func TestMembersAtAndLazyLoading(t *testing.T) {
	ts := newTestServer(t)
	room := ts.createRoom(ts.alice, `{"preset":"public_chat"}`)
	ts.send(ts.alice, room, "a", `{"msgtype":"m.text","body":"before bob"}`)
	before := ts.must(ts.v3(ts.alice, "GET", "/rooms/"+room+"/messages?limit=1", "")).str("start")
	if before == "" {
		t.Fatal("/messages gave no start token")
	}
	ts.must(ts.v3(ts.bob, "POST", "/join/"+room, `{}`))
	ts.send(ts.bob, room, "b", `{"msgtype":"m.text","body":"bob here"}`)

	then := ts.must(ts.v3(ts.alice, "GET", "/rooms/"+room+"/members?at="+url.QueryEscape(before), ""))
	if strings.Contains(then.raw, "@bob:hs") || !strings.Contains(then.raw, `"state_key":"@alice:hs"`) {
		t.Fatalf("members at the earlier token: %s", then.raw)
	}
	now := ts.must(ts.v3(ts.alice, "GET", "/rooms/"+room+"/members", ""))
	if !strings.Contains(now.raw, `"state_key":"@bob:hs"`) {
		t.Fatalf("members now: %s", now.raw)
	}

	lazy := url.QueryEscape(`{"lazy_load_members":true}`)
	page := ts.must(ts.v3(ts.alice, "GET", "/rooms/"+room+"/messages?limit=1&filter="+lazy, ""))
	state, _ := page.body["state"].([]any)
	if len(state) != 1 || !strings.Contains(page.raw, `"body":"bob here"`) {
		t.Fatalf("lazy-loaded page: %s", page.raw)
	}
	if m, _ := state[0].(map[string]any); m["state_key"] != "@bob:hs" || m["type"] != "m.room.member" {
		t.Fatalf("lazy-loaded state %v, want bob's member event", state[0])
	}
	plain := ts.must(ts.v3(ts.alice, "GET", "/rooms/"+room+"/messages?limit=1", ""))
	if _, ok := plain.body["state"]; ok {
		t.Fatalf("page without lazy loading has state: %s", plain.raw)
	}

	// /context with lazy_load_members: only the member events of the
	// senders of the events returned (bob's join and message).
	bobMsg, _ := page.body["chunk"].([]any)[0].(map[string]any)["event_id"].(string)
	cpath := "/rooms/" + room + "/context/" + url.PathEscape(bobMsg) + "?limit=1"
	lazyCtx := ts.must(ts.v3(ts.alice, "GET", cpath+"&filter="+lazy, ""))
	cstate, _ := lazyCtx.body["state"].([]any)
	if len(cstate) != 1 {
		t.Fatalf("lazy-loaded context state: %s", lazyCtx.raw)
	}
	if m, _ := cstate[0].(map[string]any); m["state_key"] != "@bob:hs" || m["type"] != "m.room.member" {
		t.Fatalf("lazy-loaded context state %v, want bob's member event", cstate[0])
	}
	full := ts.must(ts.v3(ts.alice, "GET", cpath, ""))
	if !strings.Contains(full.raw, `"type":"m.room.create"`) || !strings.Contains(full.raw, `"state_key":"@alice:hs"`) {
		t.Fatalf("context without lazy loading lacks the room's state: %s", full.raw)
	}
}

// TestEventOfAnotherRoom: an event is found only under its own room: asked
// for under another room the caller is in, it is not found (nor its
// context or relations), and it cannot be redacted from there.
func TestEventOfAnotherRoom(t *testing.T) {
	ts := newTestServer(t)
	a := ts.alice
	one := ts.createRoom(a, `{}`)
	two := ts.createRoom(a, `{}`)
	ev := url.PathEscape(ts.send(a, one, "x", `{"msgtype":"m.text","body":"in one"}`))
	ts.run(t, []tableCase{
		{"event", a, "GET", "/rooms/" + two + "/event/" + ev, "", expectation{404, "M_NOT_FOUND", ""}},
		{"context", a, "GET", "/rooms/" + two + "/context/" + ev, "", expectation{404, "M_NOT_FOUND", ""}},
		{"relations", a, "GET", v1 + "/rooms/" + two + "/relations/" + ev, "", expectation{404, "M_NOT_FOUND", ""}},
		{"under its own room", a, "GET", "/rooms/" + one + "/event/" + ev, "", expectation{200, "", "in one"}},
	})
}
