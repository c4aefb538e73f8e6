package rooms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store/sqlite"
)

// TestTeachingPermissions: with teaching mode on, only moderators and the
// listed speakers publish media, still within the publish power levels;
// off (absent, empty, disabled, redacted) changes nothing.
func TestTeachingPermissions(t *testing.T) {
	const (
		teacher = "@teacher:hs" // 100
		mod     = "@mod:hs"     // 50 = kick
		speaker = "@speaker:hs" // 0, listed
		student = "@student:hs" // 0
		gone    = "@gone:hs"    // left, listed
	)
	state := func(pl map[string]any, teaching any) authrules.StateMap {
		st := authrules.StateMap{}
		put := func(typ, key string, sender string, content any) {
			b, err := json.Marshal(content)
			if err != nil {
				t.Fatal(err)
			}
			k := key
			ev := &events.Event{Type: typ, StateKey: &k, Sender: sender, Content: b, ID: "$" + typ + key}
			st[ev.Tuple()] = ev
		}
		put("m.room.create", "", teacher, map[string]any{"creator": teacher, "room_version": "10"})
		for _, u := range []string{teacher, mod, speaker, student} {
			put("m.room.member", u, u, map[string]any{"membership": "join"})
		}
		put("m.room.member", gone, gone, map[string]any{"membership": "leave"})
		put("m.room.power_levels", "", teacher, pl)
		if teaching != nil {
			put(CallTeachingEventType, "", teacher, teaching)
		}
		return st
	}
	basePL := func() map[string]any {
		return map[string]any{"users": map[string]any{teacher: 100, mod: 50}, "kick": 50, "state_default": 50,
			"events": map[string]any{CallMemberEventType: 0}}
	}
	on := map[string]any{"enabled": true, "speakers": []any{speaker, gone}}
	type perms struct{ audio, video, screen, data, moderate bool }
	all := perms{true, true, true, true, false}
	listen := perms{false, false, false, true, false}
	moderator := perms{true, true, true, true, true}
	cases := []struct {
		name     string
		pl       map[string]any
		teaching any
		want     map[string]perms
	}{
		{"no teaching event", basePL(), nil, map[string]perms{teacher: moderator, mod: moderator, speaker: all, student: all}},
		{"empty content", basePL(), map[string]any{}, map[string]perms{speaker: all, student: all}},
		{"disabled", basePL(), map[string]any{"enabled": false, "speakers": []any{}}, map[string]perms{student: all}},
		{"enabled not a boolean", basePL(), map[string]any{"enabled": "true"}, map[string]perms{student: all}},
		{"on", basePL(), on, map[string]perms{teacher: moderator, mod: moderator, speaker: all, student: listen}},
		{"on without speakers", basePL(), map[string]any{"enabled": true}, map[string]perms{speaker: listen, student: listen, mod: moderator}},
		{"on, speakers malformed", basePL(), map[string]any{"enabled": true, "speakers": speaker}, map[string]perms{speaker: listen, mod: moderator}},
		{"on, speakers with junk entries", basePL(), map[string]any{"enabled": true, "speakers": []any{1, nil, speaker}}, map[string]perms{speaker: all, student: listen}},
		{"on, speaker still bound by publish levels", func() map[string]any {
			pl := basePL()
			pl["events"].(map[string]any)[CallPublishVideo] = 50
			return pl
		}(), on, map[string]perms{speaker: {true, false, true, true, false}, mod: moderator, student: listen}},
		{"on, moderator bound by publish levels", func() map[string]any {
			pl := basePL()
			pl["events"].(map[string]any)[CallPublishScreen] = 100
			return pl
		}(), on, map[string]perms{mod: {true, true, false, true, true}, teacher: moderator}},
		{"on, kick level raised: mod is no moderator", func() map[string]any {
			pl := basePL()
			pl["kick"] = 75
			return pl
		}(), on, map[string]perms{mod: listen, teacher: moderator}},
		{"on, demoted moderator", func() map[string]any {
			pl := basePL()
			delete(pl["users"].(map[string]any), mod)
			return pl
		}(), on, map[string]perms{mod: listen}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := state(tc.pl, tc.teaching)
			for user, want := range tc.want {
				p, err := callPermissions(events.RoomV10, st, user)
				if err != nil {
					t.Fatal(err)
				}
				got := perms{p.PublishAudio, p.PublishVideo, p.PublishScreen, p.PublishData, p.Moderate}
				if !p.Joined || got != want {
					t.Errorf("%s: joined %v, %+v, want %+v", user, p.Joined, got, want)
				}
			}
			// A listed user who left gets nothing.
			if p, err := callPermissions(events.RoomV10, st, gone); err != nil || p != (CallPermissions{}) {
				t.Errorf("left user: %+v %v", p, err)
			}
		})
	}
}

func TestParseTeachingMode(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    TeachingMode
	}{
		{`{"enabled":true,"speakers":["@a:hs","@b:hs"]}`, TeachingMode{true, []string{"@a:hs", "@b:hs"}}},
		{`{}`, TeachingMode{}},
		{`{"enabled":1}`, TeachingMode{}},
		{`{"enabled":true,"speakers":{"@a:hs":true}}`, TeachingMode{Enabled: true}},
		{`{"enabled":true,"speakers":["",2,"@a:hs"]}`, TeachingMode{true, []string{"@a:hs"}}},
		{`[]`, TeachingMode{}},
		{`not json`, TeachingMode{}},
	} {
		got := ParseTeachingMode(json.RawMessage(tc.content))
		if got.Enabled != tc.want.Enabled || !slices.Equal(got.Speakers, tc.want.Speakers) {
			t.Errorf("ParseTeachingMode(%s) = %+v, want %+v", tc.content, got, tc.want)
		}
	}
}

type grantsRecorder chan string

func (g grantsRecorder) CallGrantsChanged(_ context.Context, roomID string) { g <- roomID }

func newTestService(t testing.TB, l CallGrantsListener) *Service {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return New(Params{Store: st, ServerName: "hs", Key: key, CallGrants: l,
		UserExists: func(context.Context, string) bool { return true }})
}

// TestCallGrantsListenerEvents: the queue gets the room after commits that
// change power levels, teaching mode or a membership (including a
// redaction of the first two), and after nothing else.
func TestCallGrantsListenerEvents(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, make(grantsRecorder, 1))
	room, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "public_chat"},
		func(context.Context, string) (string, string) { return "", "" })
	if err != nil {
		t.Fatal(err)
	}
	expect := func(what string, want bool) {
		t.Helper()
		got := s.grants.take()
		if want && !slices.Equal(got, []string{room}) || !want && len(got) != 0 {
			t.Errorf("%s: queued %v, want change %v", what, got, want)
		}
	}
	expect("create", true)
	send := func(who, typ string, key *string, content any) string {
		t.Helper()
		b, _ := json.Marshal(content)
		id, err := s.Send(ctx, room, who, Event{Type: typ, StateKey: key, Content: b})
		if err != nil {
			t.Fatalf("send %s: %v", typ, err)
		}
		return id
	}
	empty := ""
	msg := send("@alice:hs", "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "hi"})
	expect("message", false)
	send("@alice:hs", "m.room.topic", &empty, map[string]any{"topic": "t"})
	expect("topic", false)
	ck := "_@alice:hs_DEV_m.call"
	send("@alice:hs", CallMemberEventType, &ck, map[string]any{"application": "m.call", "device_id": "DEV"})
	expect("call membership", false)
	send("@alice:hs", "m.reaction", nil, map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": msg, "key": "🖐️"}})
	expect("reaction", false)
	other := "x"
	send("@alice:hs", CallTeachingEventType, &other, map[string]any{"enabled": true})
	expect("teaching with another state key", false)
	teach := send("@alice:hs", CallTeachingEventType, &empty, map[string]any{"enabled": true})
	expect("teaching", true)
	if _, err := s.Join(ctx, room, "@bob:hs", "", nil); err != nil {
		t.Fatal(err)
	}
	expect("join", false)
	bob := "@bob:hs"
	send(bob, "m.room.member", &bob, map[string]any{"membership": "join", "displayname": "Bob"})
	expect("a profile change", false)
	send("@alice:hs", "m.room.power_levels", &empty, map[string]any{"users": map[string]any{"@alice:hs": 100, "@bob:hs": 50}})
	expect("power levels", true)
	if _, err := s.Send(ctx, room, "@bob:hs", Event{Type: "m.room.power_levels", StateKey: &empty, Content: json.RawMessage(`{}`)}); err == nil {
		t.Fatal("bob changed the power levels")
	}
	expect("refused power levels", false)
	_, _ = s.Send(ctx, room, "@alice:hs", Event{Type: "m.room.redaction", Content: json.RawMessage(`{}`), Redacts: msg})
	expect("redacting a message", false)
	_, err = s.Send(ctx, room, "@alice:hs", Event{Type: "m.room.redaction", Content: json.RawMessage(`{}`), Redacts: teach})
	if err != nil {
		t.Fatal(err)
	}
	expect("redacting teaching mode", true)
	if p, err := s.CallPermissions(ctx, "@bob:hs", room); err != nil || !p.PublishAudio {
		t.Fatalf("after redaction: %+v %v", p, err)
	}
	if err := s.Kick(ctx, room, "@alice:hs", "@bob:hs", ""); err != nil {
		t.Fatal(err)
	}
	expect("kick", true)
}

// gate is a listener that reports each delivery and holds it until
// released.
type gate struct{ got, release chan string }

func (g gate) CallGrantsChanged(_ context.Context, roomID string) {
	g.got <- roomID
	<-g.release
}

// TestCallGrantsRunCoalesces: changes arriving while the listener is busy
// are delivered once per room, in arrival order; Run returns when its
// context ends.
func TestCallGrantsRunCoalesces(t *testing.T) {
	g := gate{got: make(chan string), release: make(chan string)}
	s := newTestService(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	s.grants.add("!a:hs")
	if r := <-g.got; r != "!a:hs" {
		t.Fatalf("first delivery %s", r)
	}
	for _, r := range []string{"!a:hs", "!b:hs", "!a:hs", "!b:hs", "!a:hs"} {
		s.grants.add(r) // never blocks, though the listener is busy
	}
	g.release <- ""
	for _, want := range []string{"!a:hs", "!b:hs"} {
		if r := <-g.got; r != want {
			t.Fatalf("delivered %s, want %s", r, want)
		}
		g.release <- ""
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left := s.grants.take(); len(left) != 0 {
		t.Fatalf("left queued: %v", left)
	}
}

// BenchmarkCallPermissionsTeaching: one participant's grant decided from a
// room of 500 members in teaching mode with 20 speakers (what RoomChanged
// pays per participant, beside the room lock).
func BenchmarkCallPermissionsTeaching(b *testing.B) {
	st := authrules.StateMap{}
	put := func(typ, key string, content any) {
		c, _ := json.Marshal(content)
		k := key
		ev := &events.Event{Type: typ, StateKey: &k, Sender: "@t:hs", Content: c}
		st[ev.Tuple()] = ev
	}
	put("m.room.create", "", map[string]any{"creator": "@t:hs"})
	var speakers []string
	for i := 0; i < 500; i++ {
		u := fmt.Sprintf("@u%d:hs", i)
		put("m.room.member", u, map[string]any{"membership": "join"})
		if i < 20 {
			speakers = append(speakers, u)
		}
	}
	put("m.room.member", "@student:hs", map[string]any{"membership": "join"})
	put("m.room.power_levels", "", map[string]any{"users": map[string]any{"@t:hs": 100}, "kick": 50,
		"events": map[string]any{CallPublishVideo: 0}})
	put(CallTeachingEventType, "", map[string]any{"enabled": true, "speakers": speakers})
	b.ReportAllocs()
	for b.Loop() {
		if p, err := callPermissions(events.RoomV10, st, "@student:hs"); err != nil || p.PublishAudio {
			b.Fatal(p, err)
		}
	}
}

// TestCallPermissionsV12Creators: in a v12 room the creators are not in
// the power levels' users (MSC4289) yet moderate its call and publish
// whatever the levels ask; an admin at 100 does too, a member does not
// moderate.
func TestCallPermissionsV12Creators(t *testing.T) {
	const (
		owner   = "@owner:hs"
		coowner = "@coowner:hs"
		admin   = "@admin:hs"
		member  = "@member:hs"
	)
	create := &events.Event{Version: events.RoomV12, ID: "$create", Type: "m.room.create", StateKey: strp(""), Sender: owner,
		Content: json.RawMessage(`{"room_version":"12","additional_creators":["@coowner:hs"]}`)}
	create.RoomID = events.RoomIDForCreateEvent(create.ID)
	st := authrules.StateMap{create.Tuple(): create}
	put := func(typ, key, content string) {
		ev := &events.Event{Version: events.RoomV12, ID: "$" + typ + key, RoomID: create.RoomID, Type: typ, StateKey: strp(key),
			Sender: owner, Content: json.RawMessage(content)}
		st[ev.Tuple()] = ev
	}
	for _, u := range []string{owner, coowner, admin, member} {
		put("m.room.member", u, `{"membership":"join"}`)
	}
	put("m.room.power_levels", "", fmt.Sprintf(`{"users":{%q:100},"kick":100,"events":{%q:0,%q:100}}`,
		admin, CallMemberEventType, CallPublishScreen))
	for _, tc := range []struct {
		user             string
		moderate, screen bool
	}{
		{owner, true, true}, {coowner, true, true}, {admin, true, true}, {member, false, false},
	} {
		p, err := callPermissions(events.RoomV12, st, tc.user)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Joined || p.Moderate != tc.moderate || p.PublishScreen != tc.screen || !p.PublishAudio {
			t.Errorf("%s: %+v", tc.user, p)
		}
	}
}
