package storetest

import (
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// testRelationsPage: /relations pages forwards and backwards between two
// bounds, filters by rel_type and event type, and follows relations of
// relations only as deep as asked.
func testRelationsPage(t *testing.T, s store.Store) {
	const room = "!rel:test"
	rel := func(id, typ, relType, parent string) store.EventRow {
		e := ev(room, id, typ, nil, "@a:test")
		e.RelType, e.RelatesTo = relType, parent
		return e
	}
	b := &store.EventBatch{
		NewRoom: &store.Room{RoomID: room, Version: "10", Creator: "@a:test", CreatedTS: 1},
		Events: []store.EventRow{
			ev(room, "$rcreate", "m.room.create", sk(""), "@a:test"),
			ev(room, "$root", "m.room.message", nil, "@a:test"),
			rel("$t1", "m.room.message", "m.thread", "$root"),
			rel("$t2", "m.room.message", "m.thread", "$root"),
			rel("$edit", "m.room.message", "m.replace", "$root"),
			rel("$t3", "m.dummy", "m.thread", "$root"),
			rel("$t4", "m.room.message", "m.thread", "$root"),
			// Relations of relations: a reaction to $t1, an edit of it.
			rel("$react", "m.reaction", "m.annotation", "$t1"),
			rel("$reactedit", "m.reaction", "m.annotation", "$react"),
			rel("$deep", "m.reaction", "m.annotation", "$reactedit"),
		},
	}
	if _, err := s.PersistEvents(ctx, b); err != nil {
		t.Fatal(err)
	}
	// An event of another room naming $root is no relation of it.
	other := store.EventRow{EventID: "$elsewhere", RoomID: "!other:test", Type: "m.room.message", Sender: "@a:test",
		JSON: []byte(`{}`), RelType: "m.thread", RelatesTo: "$root"}
	if _, err := s.PersistEvents(ctx, &store.EventBatch{
		NewRoom: &store.Room{RoomID: "!other:test", Version: "10", Creator: "@a:test", CreatedTS: 1},
		Events:  []store.EventRow{ev("!other:test", "$ocreate", "m.room.create", sk(""), "@a:test"), other},
	}); err != nil {
		t.Fatal(err)
	}
	pos := map[string]int64{}
	for _, e := range b.Events {
		pos[e.EventID] = e.Pos
	}
	ids := func(q store.RelationsQuery) []string {
		t.Helper()
		q.RoomID = room
		if q.EventID == "" {
			q.EventID = "$root"
		}
		if q.Limit == 0 {
			q.Limit = 100
		}
		rows, err := s.RelationsPage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r.EventID)
		}
		return out
	}
	cases := []struct {
		name string
		q    store.RelationsQuery
		want []string
	}{
		{"newest first", store.RelationsQuery{}, []string{"$t4", "$t3", "$edit", "$t2", "$t1"}},
		{"oldest first", store.RelationsQuery{Forward: true}, []string{"$t1", "$t2", "$edit", "$t3", "$t4"}},
		{"limit", store.RelationsQuery{Forward: true, Limit: 2}, []string{"$t1", "$t2"}},
		{"after", store.RelationsQuery{Forward: true, After: pos["$t2"]}, []string{"$edit", "$t3", "$t4"}},
		{"before", store.RelationsQuery{Before: pos["$t3"]}, []string{"$edit", "$t2", "$t1"}},
		{"between", store.RelationsQuery{After: pos["$t1"], Before: pos["$t4"]}, []string{"$t3", "$edit", "$t2"}},
		{"rel type", store.RelationsQuery{RelType: "m.thread", Forward: true}, []string{"$t1", "$t2", "$t3", "$t4"}},
		{"rel and event type", store.RelationsQuery{RelType: "m.thread", EventType: "m.room.message"}, []string{"$t4", "$t2", "$t1"}},
		{"depth 2", store.RelationsQuery{Depth: 2, Forward: true}, []string{"$t1", "$t2", "$edit", "$t3", "$t4", "$react"}},
		{"depth 3", store.RelationsQuery{Depth: 3}, []string{"$reactedit", "$react", "$t4", "$t3", "$edit", "$t2", "$t1"}},
		{"depth 3 filtered", store.RelationsQuery{Depth: 3, RelType: "m.annotation", Forward: true}, []string{"$react", "$reactedit"}},
		{"depth 3 bounded", store.RelationsQuery{Depth: 3, After: pos["$t3"], Limit: 2, Forward: true}, []string{"$t4", "$react"}},
		{"of a relation", store.RelationsQuery{EventID: "$react", Depth: 5}, []string{"$deep", "$reactedit"}},
		{"none", store.RelationsQuery{EventID: "$t4", Depth: 3}, nil},
	}
	for _, tc := range cases {
		if got := ids(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// testAccountDataBatch: several types written at one position, read back
// together by AccountDataSince and one by one by AccountData; a rewrite
// moves both to a new position.
func testAccountDataBatch(t *testing.T, s store.Store) {
	before, err := s.PutAccountData(ctx, "@u:test", "", "m.direct", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	pos, err := s.PutAccountDataBatch(ctx, "@u:test", "", map[string][]byte{"a.one": []byte(`{"n":1}`), "a.two": []byte(`{"n":2}`)})
	if err != nil || pos != before+1 || s.CurrentPos() != pos {
		t.Fatalf("batch at %d (%v), want %d; head %d", pos, err, before+1, s.CurrentPos())
	}
	rows, err := s.AccountDataSince(ctx, "@u:test", before, pos)
	if err != nil || len(rows) != 2 || rows[0].Pos != pos || rows[1].Pos != pos {
		t.Fatalf("since %d: %+v %v", before, rows, err)
	}
	if b, err := s.AccountData(ctx, "@u:test", "", "a.two"); err != nil || string(b) != `{"n":2}` {
		t.Fatalf("a.two = %s %v", b, err)
	}
	again, err := s.PutAccountDataBatch(ctx, "@u:test", "", map[string][]byte{"a.one": []byte(`{"n":3}`), "a.two": []byte(`{"n":4}`)})
	if err != nil || again != pos+1 {
		t.Fatalf("rewrite at %d %v", again, err)
	}
	if rows, _ := s.AccountDataSince(ctx, "@u:test", pos, again); len(rows) != 2 || string(rows[0].Content)+string(rows[1].Content) == "" {
		t.Fatalf("rewrite since %d: %+v", pos, rows)
	}
	if rows, _ := s.AccountDataSince(ctx, "@u:test", before, pos); len(rows) != 0 {
		t.Fatalf("rewritten rows still at the old position: %+v", rows)
	}
	if _, err := s.PutAccountDataBatch(ctx, "@u:test", "", nil); err == nil {
		t.Fatal("empty batch accepted")
	}
}
