package sync

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestJoinedRoomJSON: a joined room encodes to the same JSON as the plain
// encoding of its fields (state_after in place of state when asked for),
// now that its events are appended as they are.
func TestJoinedRoomJSON(t *testing.T) {
	one, two := 1, 2
	ev := json.RawMessage(`{"type":"m.room.message","content":{"body":"<b>&</b> é \u2028"}}`)
	mem := json.RawMessage(` {"type": "m.room.member", "state_key": "@a:t"} `)
	rooms := map[string]JoinedRoom{
		"empty": {},
		"full": {
			Summary:                   Summary{Heroes: []string{"@a:t"}, JoinedMemberCount: &one, InvitedMemberCount: &two},
			State:                     EventList{Events: []json.RawMessage{mem}},
			Timeline:                  Timeline{Events: []json.RawMessage{ev, ev}, Limited: true, PrevBatch: "t12"},
			Ephemeral:                 EventList{Events: []json.RawMessage{json.RawMessage(`{"type":"m.typing"}`)}},
			AccountData:               EventList{Events: []json.RawMessage{json.RawMessage(`{"type":"m.tag"}`)}},
			UnreadNotifications:       &UnreadCounts{NotificationCount: 3, HighlightCount: 1},
			UnreadThreadNotifications: map[string]UnreadCounts{"$root": {NotificationCount: 1}},
		},
		"state_after": {
			State:           EventList{Events: []json.RawMessage{mem}},
			StateAfter:      EventList{Events: []json.RawMessage{mem, mem}},
			StateAfterField: "org.matrix.msc4222.state_after",
			Timeline:        Timeline{Events: []json.RawMessage{ev}},
		},
	}
	// JoinedRoom's JSON is written field by field: a field added to it
	// (or to Timeline, which it writes inline) must be set in a case here.
	everyFieldSet(t, rooms["full"], rooms["state_after"])
	everyFieldSet(t, rooms["full"].Timeline)
	for name, r := range rooms {
		t.Run(name, func(t *testing.T) {
			got, err := json.Marshal(map[string]*JoinedRoom{"!r:t": &r})
			if err != nil {
				t.Fatal(err)
			}
			// The plain encoding, as before.
			type plain JoinedRoom
			p := plain(r)
			if p.Timeline.Events == nil {
				p.Timeline.Events = []json.RawMessage{}
			}
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			fixEmpty := func(k string) {
				if m, ok := want[k].(map[string]any); ok && m["events"] == nil {
					m["events"] = []any{}
				}
			}
			for _, k := range []string{"state", "ephemeral", "account_data"} {
				fixEmpty(k)
			}
			if r.StateAfterField != "" {
				delete(want, "state")
				sa, _ := json.Marshal(r.StateAfter)
				var v any
				_ = json.Unmarshal(sa, &v)
				want[r.StateAfterField] = v
			}
			var gotRoom map[string]map[string]any
			if err := json.Unmarshal(got, &gotRoom); err != nil {
				t.Fatalf("%s: %v", got, err)
			}
			if !reflect.DeepEqual(gotRoom["!r:t"], want) {
				t.Errorf("got  %s\nwant %s", got, b)
			}
		})
	}
}

// BenchmarkJoinedRoomJSON: a woken sync's room (ten timeline events, a
// member event), encoded as now ("appended") and field by field through
// each level's Marshaler as before ("nested").
func BenchmarkJoinedRoomJSON(b *testing.B) {
	ev := json.RawMessage(`{"content":{"body":"1733350000000000000","msgtype":"m.text"},"event_id":"$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","origin_server_ts":1733350000000,"room_id":"!abcdefghijklmnopqr:bench","sender":"@b1234_567:bench","type":"m.room.message","unsigned":{"age":12,"membership":"join"}}`)
	evs := make([]json.RawMessage, 10)
	for i := range evs {
		evs[i] = ev
	}
	one := 1000
	r := JoinedRoom{Summary: Summary{JoinedMemberCount: &one}, State: EventList{Events: evs[:1]},
		Timeline: Timeline{Events: evs, PrevBatch: "t123"}, UnreadNotifications: &UnreadCounts{NotificationCount: 4}}
	type plain JoinedRoom
	b.Run("appended", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(map[string]*JoinedRoom{"!r:t": &r}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nested", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(map[string]plain{"!r:t": plain(r)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestResponseAppendJSON: a response's AppendJSON is what json.Marshal
// writes, byte for byte when its events hold no '<', '>' or '&' (which
// json.Marshal alone escapes), the same JSON value when they do.
func TestResponseAppendJSON(t *testing.T) {
	one := 1
	ev := json.RawMessage(`{"content":{"body":"hello","msgtype":"m.text"},"event_id":"$e","origin_server_ts":5,"sender":"@a:t","type":"m.room.message","unsigned":{"age":12,"membership":"join"}}`)
	html := json.RawMessage(`{"content":{"body":"<b>&amp;</b> é \u2028"},"type":"m.room.message"}`)
	mem := json.RawMessage(`{"content":{"membership":"join"},"state_key":"@a:t","type":"m.room.member"}`)
	full := func(evs ...json.RawMessage) *Response {
		r := newResponse()
		r.NextBatch = "s1_2_3"
		r.Rooms.Join["!b:t"] = &JoinedRoom{Summary: Summary{JoinedMemberCount: &one}, State: EventList{Events: []json.RawMessage{mem}},
			Timeline: Timeline{Events: evs, Limited: true, PrevBatch: "t1"}, UnreadNotifications: &UnreadCounts{NotificationCount: 2}}
		r.Rooms.Join["!a:t"] = &JoinedRoom{Timeline: Timeline{Events: evs}, StateAfter: EventList{Events: []json.RawMessage{mem}},
			StateAfterField: "state_after", UnreadThreadNotifications: map[string]UnreadCounts{"$r": {HighlightCount: 1}}}
		r.Rooms.Join["!c:t"] = nil
		r.Rooms.Invite["!i:t"] = &InvitedRoom{InviteState: EventList{Events: []json.RawMessage{mem}}}
		r.Rooms.Leave["!l:t"] = &LeftRoom{Timeline: Timeline{Events: evs}}
		r.Rooms.Knock["!k:t"] = &KnockedRoom{}
		r.Presence.Events = []json.RawMessage{json.RawMessage(`{"type":"m.presence"}`)}
		r.AccountData.Events = []json.RawMessage{json.RawMessage(`{"type":"m.push_rules","content":{}}`)}
		r.ToDevice.Events = []json.RawMessage{json.RawMessage(`{"type":"m.room_key_request"}`)}
		r.DeviceLists = DeviceLists{Changed: []string{"@b:t"}, Left: []string{"@c:t"}}
		r.DeviceOneTimeKeysCount["signed_curve25519"] = 7
		r.DeviceUnusedFallbackKeyTypes = []string{"signed_curve25519"}
		return r
	}
	// AppendJSON writes Response and Rooms field by field: a field added to
	// either must be set in full, which is compared with json.Marshal's.
	everyFieldSet(t, *full(ev))
	everyFieldSet(t, full(ev).Rooms)
	for name, c := range map[string]struct {
		r         *Response
		sameBytes bool
	}{
		"empty":     {newResponse(), true},
		"zero":      {&Response{}, true},
		"full":      {full(ev, ev), true},
		"no events": {full(), true},
		"html":      {full(ev, html), false},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(c.r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.r.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.sameBytes && string(got) != string(want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("not JSON: %v: %s", err, got)
			}
			_ = json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// everyFieldSet fails unless each field of the struct type of vs is
// non-zero in at least one of vs, so that a hand-written encoder's test
// covers a field added to the type after it was written.
func everyFieldSet(t *testing.T, vs ...any) {
	t.Helper()
	typ := reflect.TypeOf(vs[0])
	for i := range typ.NumField() {
		set := false
		for _, v := range vs {
			set = set || !reflect.ValueOf(v).Field(i).IsZero()
		}
		if !set {
			t.Errorf("%s.%s is not set in any case: set it so its JSON is compared", typ.Name(), typ.Field(i).Name)
		}
	}
}

// BenchmarkResponseJSON: a woken sync's answer (one room, two messages, a
// member event) through json.Marshal, as before, and AppendJSON.
func BenchmarkResponseJSON(b *testing.B) {
	ev := json.RawMessage(`{"content":{"body":"1733350000000000000","msgtype":"m.text"},"event_id":"$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","origin_server_ts":1733350000000,"sender":"@b1234_567:bench","type":"m.room.message","unsigned":{"age":12,"membership":"join"}}`)
	mem := json.RawMessage(`{"content":{"displayname":"b1234_567","membership":"join"},"event_id":"$bWVtYmVyIGV2ZW50IGlkIGZvciB1c2VyMTIzNA","origin_server_ts":1733350000000,"sender":"@b1234_567:bench","state_key":"@b1234_567:bench","type":"m.room.member","unsigned":{"age":10000012,"membership":"join"}}`)
	r := newResponse()
	r.NextBatch = "s1234_5_6_7_8_9_10"
	r.Rooms.Join["!abcdefghijklmnopqr:bench"] = &JoinedRoom{State: EventList{Events: []json.RawMessage{mem}},
		Timeline: Timeline{Events: []json.RawMessage{ev, ev}, PrevBatch: "t123"}, UnreadNotifications: &UnreadCounts{NotificationCount: 4}}
	b.Run("Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.AppendJSON(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
