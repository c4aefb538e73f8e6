package rooms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/internal/mxerr"
)

func remoteKey(t *testing.T) events.SigningKey {
	t.Helper()
	k, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestServerReads: what other servers may read of a room, event by event,
// by the history visibility in force and their users' memberships (a
// server reads what one of its users may read), and the shapes of the
// answers: state before an event with its auth chain, backfill newest
// first with unreadable events redacted, missing events oldest first
// between earliest and latest.
func TestServerReads(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	room, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "private_chat"}, noProfile)
	if err != nil {
		t.Fatal(err)
	}
	send := func(body string) string {
		t.Helper()
		id, err := s.Send(ctx, room, "@alice:hs", Event{Type: "m.room.message", Content: json.RawMessage(`{"msgtype":"m.text","body":"` + body + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	state := func(typ, key, content string) string {
		t.Helper()
		id, err := s.Send(ctx, room, "@alice:hs", Event{Type: typ, StateKey: &key, Content: json.RawMessage(content)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// A member of another server, as the membership handshakes will make
	// them: an invite by a local user, then their join.
	invite := func(user string) { state("m.room.member", user, `{"membership":"invite"}`) }

	m1 := send("shared, before anyone remote") // shared
	state("m.room.history_visibility", "", `{"history_visibility":"joined"}`)
	m2 := send("joined, nobody remote")
	invite("@x:c.test")
	m3 := send("joined, x invited")
	if _, err := s.AddRemoteMember(ctx, room, "@x:c.test", "join", remoteKey(t)); err != nil {
		t.Fatal(err)
	}
	m4 := send("joined, x joined")
	state("m.room.history_visibility", "", `{"history_visibility":"invited"}`)
	invite("@y:d.test")
	m5 := send("invited, y invited")

	forbidden := func(err error) bool {
		var me *mxerr.Error
		return errors.As(err, &me) && me.Code == mxerr.Forbidden
	}
	for _, tc := range []struct {
		server, event string
		want          bool
	}{
		{"c.test", m1, true},  // shared, x joined later
		{"c.test", m2, false}, // joined, x not there yet
		{"c.test", m3, false}, // joined, x only invited
		{"c.test", m4, true},
		{"c.test", m5, true},
		{"d.test", m1, false}, // shared, but y never joined
		{"d.test", m4, false},
		{"d.test", m5, true}, // invited, y invited
	} {
		_, pdu, err := s.ServerEvent(ctx, tc.server, tc.event)
		if tc.want && (err != nil || !strings.Contains(string(pdu), `"body"`)) {
			t.Errorf("%s reading %s: %v", tc.server, tc.event, err)
		}
		if !tc.want && !forbidden(err) {
			t.Errorf("%s reading %s: %v, want M_FORBIDDEN", tc.server, tc.event, err)
		}
	}
	if _, _, err := s.ServerEvent(ctx, "e.test", m5); !forbidden(err) {
		t.Errorf("a server with no member: %v", err)
	}
	if _, _, err := s.ServerEvent(ctx, "c.test", "$nothing"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown event: %v", err)
	}

	// State before m4 has x joined; its auth chain has the create event.
	st, chain, err := s.ServerState(ctx, "c.test", room, m4)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range st {
		var e struct {
			Type     string `json:"type"`
			StateKey string `json:"state_key"`
			Content  struct {
				Membership string `json:"membership"`
			} `json:"content"`
		}
		_ = json.Unmarshal(p.JSON, &e)
		types = append(types, e.Type+"|"+e.StateKey+"|"+e.Content.Membership)
	}
	if !slices.Contains(types, "m.room.member|@x:c.test|join") || slices.Contains(types, "m.room.member|@y:d.test|invite") {
		t.Fatalf("state before m4: %v", types)
	}
	hasCreate := false
	for _, p := range chain {
		hasCreate = hasCreate || strings.Contains(string(p.JSON), `"m.room.create"`)
	}
	if !hasCreate || len(chain) < 3 {
		t.Fatalf("auth chain of %d events, create %v", len(chain), hasCreate)
	}
	if _, _, err := s.ServerState(ctx, "c.test", room, m2); !forbidden(err) {
		t.Errorf("state at an event c.test may not read: %v", err)
	}
	if _, _, err := s.ServerState(ctx, "e.test", room, m4); !forbidden(err) {
		t.Errorf("state for a server with no member: %v", err)
	}
	ac, err := s.ServerAuthChain(ctx, "c.test", room, m4)
	if err != nil || len(ac) < 3 {
		t.Fatalf("auth chain of m4: %d %v", len(ac), err)
	}

	// Backfill from m5 for d.test: newest first, what y may not read
	// redacted (no body), the walk through prev_events bounded by limit.
	bf, err := s.ServerBackfill(ctx, "d.test", room, []string{m5}, 100)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, p := range bf {
		ids[p.EventID] = string(p.JSON)
	}
	if bf[0].EventID != m5 || !strings.Contains(ids[m5], `"body"`) || strings.Contains(ids[m4], `"body"`) ||
		strings.Contains(ids[m1], `"body"`) || ids[m1] == "" {
		t.Fatalf("backfill for d.test: first %s, %d events", bf[0].EventID, len(bf))
	}
	if bf, _ := s.ServerBackfill(ctx, "c.test", room, []string{m5}, 2); len(bf) != 2 || bf[0].EventID != m5 {
		t.Fatalf("backfill limited to 2: %d", len(bf))
	}
	if _, err := s.ServerBackfill(ctx, "e.test", room, []string{m5}, 10); !forbidden(err) {
		t.Errorf("backfill for a server with no member: %v", err)
	}

	// Missing events between m2 and m5: oldest first, neither end.
	me, err := s.ServerMissingEvents(ctx, "c.test", room, []string{m2}, []string{m5}, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range me {
		got = append(got, p.EventID)
	}
	if len(got) != 6 || slices.Contains(got, m2) || slices.Contains(got, m5) || slices.Contains(got, m1) ||
		slices.Index(got, m3) > slices.Index(got, m4) {
		t.Fatalf("missing events: %v (m3 %s, m4 %s)", got, m3, m4)
	}
	if me, _ := s.ServerMissingEvents(ctx, "c.test", room, []string{m2}, []string{m5}, 2, 0); len(me) != 2 || me[1].EventID != got[5] {
		t.Fatalf("missing events limited to 2: %d", len(me))
	}

	// World-readable history is for every server, from the change on.
	state("m.room.history_visibility", "", `{"history_visibility":"world_readable"}`)
	m6 := send("world")
	if _, _, err := s.ServerEvent(ctx, "e.test", m6); err != nil {
		t.Errorf("world_readable event for any server: %v", err)
	}
	if _, _, err := s.ServerEvent(ctx, "e.test", m5); !forbidden(err) {
		t.Errorf("an event from before world_readable: %v", err)
	}

	if acl, err := s.ServerACL(ctx, room); err != nil || acl != nil {
		t.Fatalf("no ACL: %s %v", acl, err)
	}
	state("m.room.server_acl", "", `{"allow":["*"],"deny":["evil.test"]}`)
	if acl, err := s.ServerACL(ctx, room); err != nil || !strings.Contains(string(acl), "evil.test") {
		t.Fatalf("ACL: %s %v", acl, err)
	}
}

// TestServerReadsWhileRoomLocked: a received PDU holds its room's lock
// while it fetches events from the origin; the origin's own reads of the
// room (its ACL, its reader) must not wait for that lock, or two servers
// fetching from each other would each wait 30 s and fail.
func TestServerReadsWhileRoomLocked(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	room, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "public_chat"}, noProfile)
	if err != nil {
		t.Fatal(err)
	}
	key := ""
	if _, err := s.Send(ctx, room, "@alice:hs", Event{Type: "m.room.server_acl", StateKey: &key, Content: json.RawMessage(`{"allow":["*"],"deny":["bad.test"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, room, "@alice:hs", Event{Type: "m.room.history_visibility", StateKey: &key, Content: json.RawMessage(`{"history_visibility":"world_readable"}`)}); err != nil {
		t.Fatal(err)
	}
	r, err := s.lockRoom(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	defer r.mu.Unlock()
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		acl, err := s.ServerACL(tctx, room)
		if err != nil || !strings.Contains(string(acl), "bad.test") {
			t.Errorf("ServerACL with the room locked = %s, %v", acl, err)
		}
		if acl, err := s.ServerACL(tctx, "!unknown:hs"); acl != nil || err != nil {
			t.Errorf("ServerACL of an unknown room = %s, %v", acl, err)
		}
		if _, err := s.NewServerReader(tctx, room, "other.test"); err != nil {
			t.Errorf("NewServerReader with the room locked: %v", err)
		}
		if _, err := s.NewServerReader(tctx, "!unknown:hs", "other.test"); err != errServerNoRead {
			t.Errorf("NewServerReader of an unknown room: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("served reads waited for the room's lock")
	}
}
