package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// Reopener opens a new empty store for one test and returns it with a
// function that closes a store and opens the same database again.
type Reopener func(t *testing.T) (s store.Store, reopen func(t *testing.T, s store.Store) store.Store)

// RunReopen checks that a store answers the same before and after a
// restart: reads the backend may serve from memory filled by its own
// writes (the newest events of each room, state histories, receipts,
// account data) must equal what a freshly opened store reads from the
// database, for rooms with more events than any memory keeps, with
// redactions, membership changes, threaded and unthreaded receipts.
func RunReopen(t *testing.T, open Reopener) {
	s, reopen := open(t)
	const room, quiet = "!busy:test", "!quiet:test"
	users := []string{"@a:test", "@b:test", "@c:test"}
	persist := func(b *store.EventBatch) { // s changes at each reopen
		t.Helper()
		persister(t, s)(b)
	}
	persist(&store.EventBatch{
		NewRoom: &store.Room{RoomID: room, Version: "10", Creator: users[0], CreatedTS: 1},
		Events: []store.EventRow{
			ev(room, "$create", "m.room.create", sk(""), users[0]),
			member(room, "$join-a", users[0], "join"),
			ev(room, "$vis", "m.room.history_visibility", sk(""), users[0]),
		},
	})
	persist(&store.EventBatch{
		NewRoom: &store.Room{RoomID: quiet, Version: "10", Creator: users[0], CreatedTS: 2},
		Events:  []store.EventRow{ev(quiet, "$q-create", "m.room.create", sk(""), users[0]), member(quiet, "$q-join", users[0], "join")},
	})
	persist(&store.EventBatch{Events: []store.EventRow{member(room, "$join-b", users[1], "join"), member(room, "$join-c", users[2], "join")}})

	for i, u := range users[:2] {
		if err := s.CreateAccount(ctx, store.Account{Localpart: u[1:2], UserID: u, CreatedTS: 1}, fmt.Sprint("user ", i)); err != nil {
			t.Fatal(err)
		}
	}

	n := 0
	send := func(count int) {
		t.Helper()
		for range count {
			n++
			e := ev(room, fmt.Sprintf("$m%d", n), "m.room.message", nil, users[n%3])
			e.SenderDevice, e.TxnID = "DEV", fmt.Sprintf("t%d", n)
			if n%7 == 0 {
				e.Unsigned = []byte(`{"note":1}`)
			}
			persist(&store.EventBatch{Events: []store.EventRow{e}})
			switch n % 20 {
			case 5:
				if _, err := s.PutReceipt(ctx, store.Receipt{RoomID: room, UserID: users[1], Type: "m.read", EventID: e.EventID, TS: int64(n)}); err != nil {
					t.Fatal(err)
				}
			case 9:
				if _, err := s.PutReceipt(ctx, store.Receipt{RoomID: room, UserID: users[2], Type: "m.read", EventID: e.EventID, ThreadID: "$m1", TS: int64(n)}); err != nil {
					t.Fatal(err)
				}
			case 13:
				if _, err := s.PutAccountData(ctx, users[n%3], "", "m.tag", []byte(fmt.Sprintf(`{"n":%d}`, n))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	send(40)
	leave := member(room, "$leave-c", users[2], "leave")
	persist(&store.EventBatch{Events: []store.EventRow{leave}})
	send(40)
	// Redact an old message (only in the database by now) and a new one.
	red := ev(room, "$redaction", "m.room.redaction", nil, users[0])
	persist(&store.EventBatch{Events: []store.EventRow{red}, Redactions: []store.Redaction{
		{EventID: "$m3", RedactedJSON: []byte(`{"redacted":"m3"}`), By: "$redaction"},
		{EventID: fmt.Sprintf("$m%d", n), RedactedJSON: []byte(`{"redacted":"last"}`), By: "$redaction"},
	}})
	send(5)

	check := func(phase string) {
		t.Helper()
		before := answers(t, s, users, room, quiet)
		s = reopen(t, s)
		after := answers(t, s, users, room, quiet)
		if before != after {
			t.Fatalf("%s: answers differ after reopening:\n%s", phase, diffLines(before, after))
		}
		// Ask twice: the second answer may come from what the first read.
		if again := answers(t, s, users, room, quiet); again != after {
			t.Fatalf("%s: answers differ when asked again:\n%s", phase, diffLines(after, again))
		}
	}
	check("first run")
	// Write again after the restart: the memory starts from the reopened
	// head and must still agree with the database.
	persist(&store.EventBatch{Events: []store.EventRow{member(room, "$rejoin-c", users[2], "join")}})
	send(50)
	// Profiles read before are answered again after a change.
	if err := s.SetDisplayName(ctx, users[0], "renamed"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAvatarURL(ctx, users[1], "mxc://test/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, store.Account{Localpart: "c", UserID: users[2], CreatedTS: 1}, "late"); err != nil {
		t.Fatal(err)
	}
	check("after restart")
}

// answers reads everything a sync or the unread counts might ask, as text.
func answers(t *testing.T, s store.Store, users []string, room, quiet string) string {
	t.Helper()
	var b strings.Builder
	head := s.CurrentPos()
	fmt.Fprintf(&b, "head %d\n", head)
	row := func(label string, e store.EventRow, err error) {
		fmt.Fprintf(&b, "%s: err=%v pos=%d id=%s room=%s type=%s sk=%s sender=%s json=%s red=%s rel=%s/%s dev=%s txn=%s mem=%s unsigned=%s\n",
			label, err, e.Pos, e.EventID, e.RoomID, e.Type, deref(e.StateKey), e.Sender, e.JSON, e.RedactedBy,
			e.RelType, e.RelatesTo, e.SenderDevice, e.TxnID, e.Membership, e.Unsigned)
	}
	rows := func(label string, es []store.EventRow, err error) {
		fmt.Fprintf(&b, "%s: %d rows err=%v\n", label, len(es), err)
		for i, e := range es {
			row(fmt.Sprintf("  %d", i), e, nil)
		}
	}
	for _, r := range []string{room, quiet} {
		for _, after := range []int64{0, head / 2, head - 12, head - 3, head} {
			for _, before := range []int64{head + 1, head - 1, head / 2} {
				for _, limit := range []int{1, 10, 11, 31, 100} {
					for _, desc := range []bool{true, false} {
						es, err := s.RoomEvents(ctx, r, after, before, limit, desc)
						rows(fmt.Sprintf("RoomEvents %s %d %d %d %v", r, after, before, limit, desc), es, err)
					}
				}
			}
		}
		e, err := s.LastEvent(ctx, r)
		row("LastEvent "+r, e, err)
		h, err := s.StateHistory(ctx, r, "m.room.history_visibility", "")
		rows("StateHistory vis "+r, h, err)
		for _, u := range users {
			h, err := s.StateHistory(ctx, r, "m.room.member", u)
			rows("StateHistory member "+r+" "+u, h, err)
			for _, typ := range []string{"m.read", "m.read.private"} {
				rc, err := s.UserReceipt(ctx, r, u, typ)
				fmt.Fprintf(&b, "UserReceipt %s %s %s: %+v %v\n", r, u, typ, rc, err)
			}
		}
	}
	all, err := s.RoomEvents(ctx, room, 0, head+1, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		got, err := s.Event(ctx, e.EventID)
		row("Event", got, err)
	}
	for _, u := range users {
		p, err := s.Profile(ctx, u)
		fmt.Fprintf(&b, "Profile %s: %+v %v\n", u, p, err)
	}
	for _, since := range []int64{0, head / 2, head - 10, head} {
		rs, err := s.ReceiptsSince(ctx, []string{room, quiet}, since, head)
		fmt.Fprintf(&b, "ReceiptsSince %d: %+v %v\n", since, rs, err)
		for _, u := range users {
			ad, err := s.AccountDataSince(ctx, u, since, head)
			fmt.Fprintf(&b, "AccountDataSince %s %d: %d err=%v\n", u, since, len(ad), err)
			for _, a := range ad {
				fmt.Fprintf(&b, "  %s %s %s %s %d\n", a.UserID, a.RoomID, a.Type, a.Content, a.Pos)
			}
		}
	}
	return b.String()
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return "'" + *p + "'"
}

// diffLines shows the first lines that differ.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)) && len(out) < 10; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n  before: %s\n  after:  %s", i+1, x, y))
		}
	}
	return strings.Join(out, "\n")
}
