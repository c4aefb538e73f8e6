package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// testRoomDAG: forward extremities replaced with a batch, events outside
// the timeline that timeline reads never return, an outlier that later
// joins the timeline, current state set after a resolution.
func testRoomDAG(t *testing.T, s store.Store) {
	ctx := context.Background()
	const room = "!dag:test"
	if err := s.CreateRoom(ctx, store.Room{RoomID: room, Version: "10", Creator: "@a:test", CreatedTS: 1}); err != nil {
		t.Fatal(err)
	}
	// Again: left as it is.
	if err := s.CreateRoom(ctx, store.Room{RoomID: room, Version: "11", Creator: "@x:test", CreatedTS: 2}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Room(ctx, room); err != nil || r.Version != "10" {
		t.Fatalf("Room = %+v, %v", r, err)
	}
	if ex, err := s.Extremities(ctx, room); err != nil || len(ex) != 0 {
		t.Fatalf("no extremities yet: %v, %v", ex, err)
	}
	b := &store.EventBatch{
		Events: []store.EventRow{
			ev(room, "$create", "m.room.create", sk(""), "@a:test"),
			member(room, "$join-a", "@a:test", "join"),
			ev(room, "$topic1", "m.room.topic", sk(""), "@a:test"),
		},
		Extremities: []string{"$topic1"},
		Outliers: []store.OutlierRow{
			{EventID: "$auth", RoomID: room, Status: store.StatusOutlier, JSON: []byte(`{"a":1}`)},
			{EventID: "$later", RoomID: room, Status: store.StatusOutlier, JSON: []byte(`{"b":1}`)},
		},
	}
	if _, err := s.PersistEvents(ctx, b); err != nil {
		t.Fatal(err)
	}
	if ex, err := s.Extremities(ctx, room); err != nil || !slices.Equal(ex, []string{"$topic1"}) {
		t.Fatalf("extremities = %v, %v", ex, err)
	}
	if err := s.PutOutliers(ctx, []store.OutlierRow{
		{EventID: "$bad", RoomID: room, Status: store.StatusRejected, JSON: []byte(`{}`)},
		{EventID: "$soft", RoomID: room, Status: store.StatusSoftFailed, JSON: []byte(`{}`)},
		// Already an outlier, or in the timeline: unchanged.
		{EventID: "$auth", RoomID: room, Status: store.StatusRejected, JSON: []byte(`{}`)},
		{EventID: "$topic1", RoomID: room, Status: store.StatusRejected, JSON: []byte(`{}`)},
	}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"$auth": store.StatusOutlier, "$bad": store.StatusRejected, "$soft": store.StatusSoftFailed} {
		o, err := s.Outlier(ctx, id)
		if err != nil || o.Status != want || o.RoomID != room {
			t.Fatalf("Outlier(%s) = %+v, %v", id, o, err)
		}
	}
	if o, err := s.Outlier(ctx, "$auth"); err != nil || string(o.JSON) != `{"a":1}` {
		t.Fatalf("outlier JSON = %q, %v", o.JSON, err)
	}
	if _, err := s.Outlier(ctx, "$topic1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a timeline event is no outlier: %v", err)
	}
	// Timeline reads see none of them.
	rows, err := s.RoomEvents(ctx, room, 0, s.CurrentPos()+1, 100, false)
	if err != nil || len(rows) != 3 {
		t.Fatalf("timeline = %d rows, %v", len(rows), err)
	}
	for _, r := range rows {
		if r.EventID == "$auth" || r.EventID == "$bad" || r.EventID == "$soft" {
			t.Fatalf("timeline holds %s", r.EventID)
		}
	}
	if _, err := s.Event(ctx, "$bad"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Event($bad) = %v", err)
	}
	// Two concurrent branches: extremities $m1 and $topic2; the outlier
	// $later joins the timeline and leaves the outliers; the resolution
	// keeps $topic1 as the topic and Bob's join.
	b2 := &store.EventBatch{
		Events: []store.EventRow{
			ev(room, "$m1", "m.room.message", nil, "@a:test"),
			ev(room, "$topic2", "m.room.topic", sk(""), "@b:test"),
			ev(room, "$later", "m.room.message", nil, "@b:test"),
			member(room, "$join-b", "@b:test", "join"),
			member(room, "$leave-b", "@b:test", "leave"),
		},
		Extremities: []string{"$m1", "$later"},
		State: []store.StateRef{
			{Type: "m.room.topic", StateKey: "", EventID: "$topic1"},
			{Type: "m.room.member", StateKey: "@b:test", EventID: "$join-b"},
		},
	}
	if _, err := s.PersistEvents(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if ex, _ := s.Extremities(ctx, room); !slices.Equal(ex, []string{"$later", "$m1"}) {
		t.Fatalf("extremities = %v", ex)
	}
	if _, err := s.Outlier(ctx, "$later"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("$later still an outlier: %v", err)
	}
	cur, err := s.CurrentState(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range cur {
		got[r.Type+"|"+*r.StateKey] = r.EventID
	}
	if got["m.room.topic|"] != "$topic1" || got["m.room.member|@b:test"] != "$join-b" {
		t.Fatalf("current state = %v", got)
	}
	ms, err := s.RoomMemberships(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.UserID == "@b:test" && (m.Membership != "join" || m.EventID != "$join-b") {
			t.Fatalf("Bob's membership = %+v", m)
		}
	}
	// A batch without Extremities leaves them.
	if _, err := s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{ev(room, "$m2", "m.room.message", nil, "@a:test")}}); err != nil {
		t.Fatal(err)
	}
	if ex, _ := s.Extremities(ctx, room); len(ex) != 2 {
		t.Fatalf("extremities changed: %v", ex)
	}
	// A resolution that keeps no topic and no membership of Bob takes
	// them out of the current state and the memberships.
	if _, err := s.PersistEvents(ctx, &store.EventBatch{ExtremitiesRoom: room, State: []store.StateRef{
		{Type: "m.room.topic"}, {Type: "m.room.member", StateKey: "@b:test"},
	}}); err != nil {
		t.Fatal(err)
	}
	if cur, err = s.CurrentState(ctx, room); err != nil {
		t.Fatal(err)
	}
	for _, r := range cur {
		if r.Type == "m.room.topic" || (r.Type == "m.room.member" && *r.StateKey == "@b:test") {
			t.Fatalf("current state still holds %s %s", r.Type, r.EventID)
		}
	}
	if ms, err = s.RoomMemberships(ctx, room); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.UserID == "@b:test" {
			t.Fatalf("Bob's membership left: %+v", m)
		}
	}
	// A resolved state naming an event not in the timeline fails whole.
	if _, err := s.PersistEvents(ctx, &store.EventBatch{ExtremitiesRoom: room, State: []store.StateRef{{Type: "m.room.name", EventID: "$auth"}}}); err == nil {
		t.Fatal("state naming an outlier was accepted")
	}
}
