package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// testThreadRoots: threads come by their newest reply, newest first,
// paginated by that position; redacted replies do not count; the
// participant filter keeps threads whose root or a reply they sent.
func testThreadRoots(t *testing.T, s store.Store) {
	const room = "!t:test"
	reply := func(id, root, sender string) store.EventRow {
		e := ev(room, id, "m.room.message", nil, sender)
		e.RelType, e.RelatesTo = "m.thread", root
		return e
	}
	b := &store.EventBatch{NewRoom: &store.Room{RoomID: room, Version: "10", Creator: "@a:test", CreatedTS: 1}, Events: []store.EventRow{
		ev(room, "$root1", "m.room.message", nil, "@a:test"),
		ev(room, "$root2", "m.room.message", nil, "@b:test"),
		ev(room, "$root3", "m.room.message", nil, "@b:test"),
		reply("$r1a", "$root1", "@b:test"),
		reply("$r2a", "$root2", "@b:test"),
		reply("$r3a", "$root3", "@c:test"),
		reply("$r1b", "$root1", "@b:test"),
		reply("$r3b", "$root3", "@b:test"),
	}}
	if _, err := s.PersistEvents(ctx, b); err != nil {
		t.Fatal(err)
	}
	pos := map[string]int64{}
	for _, e := range b.Events {
		pos[e.EventID] = e.Pos
	}
	list := func(participant string, before int64, limit int) string {
		t.Helper()
		got, err := s.ThreadRoots(ctx, room, participant, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, r := range got {
			out += fmt.Sprintf("%s@%d ", r.RootID, r.LatestPos)
		}
		return out
	}
	want := fmt.Sprintf("$root3@%d $root1@%d $root2@%d ", pos["$r3b"], pos["$r1b"], pos["$r2a"])
	if got := list("", 0, 10); got != want {
		t.Fatalf("threads = %q, want %q", got, want)
	}
	if got := list("", 0, 1); got != fmt.Sprintf("$root3@%d ", pos["$r3b"]) {
		t.Fatalf("first page = %q", got)
	}
	if got := list("", pos["$r3b"], 10); got != fmt.Sprintf("$root1@%d $root2@%d ", pos["$r1b"], pos["$r2a"]) {
		t.Fatalf("second page = %q", got)
	}
	if got := list("@a:test", 0, 10); got != fmt.Sprintf("$root1@%d ", pos["$r1b"]) {
		t.Fatalf("a participated (root) = %q", got)
	}
	if got := list("@c:test", 0, 10); got != fmt.Sprintf("$root3@%d ", pos["$r3b"]) {
		t.Fatalf("c participated (reply) = %q", got)
	}
	if got := list("@z:test", 0, 10); got != "" {
		t.Fatalf("z participated = %q", got)
	}
	withThreads := func(ids ...string) string {
		t.Helper()
		got, err := s.WithThreads(ctx, room, ids)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return strings.Join(got, " ")
	}
	if got := withThreads("$root1", "$root3", "$r1a", "$nope"); got != "$root1 $root3" {
		t.Fatalf("with threads = %q", got)
	}
	if got := withThreads(); got != "" {
		t.Fatalf("with threads of none = %q", got)
	}
	// Redacting the newest reply of thread 3 moves it back.
	if _, err := s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{ev(room, "$red", "m.room.redaction", nil, "@b:test")},
		Redactions: []store.Redaction{{EventID: "$r3b", RedactedJSON: []byte(`{}`), By: "$red"}}}); err != nil {
		t.Fatal(err)
	}
	if got := list("", 0, 10); got != fmt.Sprintf("$root1@%d $root3@%d $root2@%d ", pos["$r1b"], pos["$r3a"], pos["$r2a"]) {
		t.Fatalf("after redaction = %q", got)
	}
}
