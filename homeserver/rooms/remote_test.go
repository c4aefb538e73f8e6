package rooms

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// fakeRemote is the federation as rooms sees it: keys of the servers the
// test plays, missing events it hands out, and the PDUs queued.
type fakeRemote struct {
	keys    map[string]events.SigningKey
	missing map[string]json.RawMessage // event ID → PDU /get_missing_events returns
	// stateIDs is /state_ids' answer; events, /event's.
	stateIDs []string
	events   map[string]json.RawMessage

	mu     sync.Mutex
	queued []queuedPDU
}

type queuedPDU struct {
	dests []string
	pdu   json.RawMessage
}

func (f *fakeRemote) VerifyKey(_ context.Context, server, keyID string, _ int64) (ed25519.PublicKey, error) {
	k, ok := f.keys[server]
	if !ok || k.ID != keyID {
		return nil, errors.New("unknown key")
	}
	return k.Public(), nil
}

func (f *fakeRemote) MissingEvents(_ context.Context, server, roomID string, earliest, latest []string, limit int, minDepth int64) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for _, p := range f.missing {
		out = append(out, p)
	}
	return out, nil
}

func (f *fakeRemote) Backfill(context.Context, string, string, []string, int) ([]json.RawMessage, error) {
	return nil, errors.New("fakeRemote: no /backfill")
}

func (f *fakeRemote) StateIDs(context.Context, string, string, string) ([]string, []string, error) {
	if f.stateIDs == nil {
		return nil, nil, errors.New("no state here")
	}
	return f.stateIDs, nil, nil
}

func (f *fakeRemote) Event(_ context.Context, _, id string) (json.RawMessage, error) {
	if e, ok := f.events[id]; ok {
		return e, nil
	}
	return nil, errors.New("no such event here")
}

func (f *fakeRemote) QueuePDU(_ context.Context, dests []string, pdu json.RawMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, queuedPDU{slices.Clone(dests), pdu})
	return nil
}

func (f *fakeRemote) Directory(context.Context, string) (string, []string, error) {
	return "", nil, errors.New("no directory")
}

func (f *fakeRemote) MakeJoin(context.Context, string, string, string, []string) (string, json.RawMessage, error) {
	return "", nil, errors.New("no joins")
}

func (f *fakeRemote) SendJoin(context.Context, string, string, string, json.RawMessage) (JoinAnswer, error) {
	return JoinAnswer{}, errors.New("no joins")
}

func (f *fakeRemote) MakeLeave(context.Context, string, string, string) (string, json.RawMessage, error) {
	return "", nil, errors.New("no leaves")
}

func (f *fakeRemote) SendLeave(context.Context, string, string, string, json.RawMessage) error {
	return errors.New("no leaves")
}

func (f *fakeRemote) MakeKnock(context.Context, string, string, string, []string) (string, json.RawMessage, error) {
	return "", nil, errors.New("no knocks")
}

func (f *fakeRemote) SendKnock(context.Context, string, string, string, json.RawMessage) ([]json.RawMessage, error) {
	return nil, errors.New("no knocks")
}

func (f *fakeRemote) Invite(context.Context, string, string, string, events.RoomVersion, json.RawMessage, []json.RawMessage) (json.RawMessage, error) {
	return nil, errors.New("no invites")
}

// remoteRoom is a room of hs that @bob:rs joined through make_join and
// send_join, with helpers to write rs's PDUs.
type remoteRoom struct {
	t       testing.TB
	s       *Service
	f       *fakeRemote
	id      string
	v       events.RoomVersion
	rsKey   events.SigningKey
	depth   int64
	bobJoin string
}

func newRemoteRoom(t testing.TB, v events.RoomVersion) *remoteRoom {
	t.Helper()
	ctx := context.Background()
	s := newTestService(t, nil)
	rsKey, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRemote{keys: map[string]events.SigningKey{"rs": rsKey, "hs": s.p.Key}, missing: map[string]json.RawMessage{}}
	s.SetRemote(f)
	id, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "public_chat", RoomVersion: string(v)},
		func(context.Context, string) (string, string) { return "", "" })
	if err != nil {
		t.Fatal(err)
	}
	rr := &remoteRoom{t: t, s: s, f: f, id: id, v: v, rsKey: rsKey, depth: 100}
	// make_join for a version rs does not support is refused.
	if _, _, err := s.MakeJoin(ctx, "rs", id, "@bob:rs", []string{"1"}); err == nil || !isCode(err, "M_INCOMPATIBLE_ROOM_VERSION") {
		t.Fatalf("make_join without the version: %v", err)
	}
	// Only rs speaks for its users.
	if _, _, err := s.MakeJoin(ctx, "other", id, "@bob:rs", []string{string(v)}); err == nil {
		t.Fatal("make_join for another server's user")
	}
	rr.bobJoin = rr.join("@bob:rs")
	rr.join("@carol:rs")
	return rr
}

// join joins a user of rs through make_join and send_join.
func (rr *remoteRoom) join(userID string) string {
	rr.t.Helper()
	ctx := context.Background()
	ver, tmpl, err := rr.s.MakeJoin(ctx, "rs", rr.id, userID, []string{string(rr.v)})
	if err != nil || ver != rr.v {
		rr.t.Fatalf("make_join: %s %v", ver, err)
	}
	signed, ev, err := rsFill(rr.v, tmpl, rr.rsKey)
	if err != nil {
		rr.t.Fatal(err)
	}
	ans, err := rr.s.SendJoin(ctx, "rs", rr.id, ev.ID, signed)
	if err != nil {
		rr.t.Fatalf("send_join: %v", err)
	}
	if len(ans.State) == 0 || len(ans.AuthChain) == 0 {
		rr.t.Fatalf("send_join answer: %d state, %d auth chain", len(ans.State), len(ans.AuthChain))
	}
	if m, _ := rr.s.Membership(ctx, rr.id, userID); m != "join" {
		rr.t.Fatalf("membership after send_join: %q", m)
	}
	return ev.ID
}

func isCode(err error, code string) bool {
	var me *mxerr.Error
	return errors.As(err, &me) && string(me.Code) == code
}

// rsFill fills a make_join template as rs would.
func rsFill(v events.RoomVersion, tmpl json.RawMessage, key events.SigningKey) ([]byte, *events.Event, error) {
	signed, err := events.HashAndSignEvent(v, tmpl, "rs", key)
	if err != nil {
		return nil, nil, err
	}
	ev, err := events.Parse(v, signed)
	return signed, ev, err
}

// stateID is the ID of a piece of hs's current state.
func (rr *remoteRoom) stateID(typ, key string) string {
	rr.t.Helper()
	r, err := rr.s.lockRoom(context.Background(), rr.id)
	if err != nil {
		rr.t.Fatal(err)
	}
	defer r.mu.Unlock()
	ev := r.state[events.StateTuple{Type: typ, StateKey: key}]
	if ev == nil {
		rr.t.Fatalf("no %s %q", typ, key)
	}
	return ev.ID
}

// extremities are hs's forward extremities of the room.
func (rr *remoteRoom) extremities() []string {
	rr.t.Helper()
	ids, err := rr.s.p.Store.Extremities(context.Background(), rr.id)
	if err != nil {
		rr.t.Fatal(err)
	}
	return ids
}

// pdu is an event of @bob:rs, signed by rs.
func (rr *remoteRoom) pdu(typ string, stateKey *string, content string, prev []string, auth ...string) *events.Event {
	rr.t.Helper()
	if !rr.v.RoomIDFromCreateEvent() {
		auth = append([]string{rr.stateID("m.room.create", "")}, auth...)
	}
	rr.depth++
	ev, err := events.Build(events.Proto{
		RoomID: rr.id, Sender: "@bob:rs", Type: typ, StateKey: stateKey, Content: json.RawMessage(content),
		OriginServerTS: time.Now().UnixMilli() + rr.depth, PrevEvents: prev, AuthEvents: auth, Depth: rr.depth,
	}, rr.v, "rs", rr.rsKey)
	if err != nil {
		rr.t.Fatal(err)
	}
	return ev
}

func (rr *remoteRoom) message(body string, prev []string) *events.Event {
	return rr.pdu("m.room.message", nil, `{"msgtype":"m.text","body":"`+body+`"}`, prev,
		rr.stateID("m.room.power_levels", ""), rr.bobJoin)
}

func (rr *remoteRoom) inTimeline(id string) bool {
	_, err := rr.s.p.Store.Event(context.Background(), id)
	return err == nil
}

func (rr *remoteRoom) status(id string) string {
	o, err := rr.s.p.Store.Outlier(context.Background(), id)
	if err != nil {
		return ""
	}
	return o.Status
}

// TestReceivePDU: PDUs of a remote member accepted into the timeline (and
// the room's extremity), a missing prev event fetched first, an event not
// allowed by its auth events rejected (and one citing it), events of
// another server or for an unknown room refused, a replay harmless, local
// events queued to the remote server, and after a ban an event built on
// the state before it soft-failed: stored, not shown, not an extremity.
func TestReceivePDU(t *testing.T) {
	for _, v := range []events.RoomVersion{"10", "11", "12"} {
		t.Run("v"+string(v), func(t *testing.T) { testReceivePDU(t, v) })
	}
}

func testReceivePDU(t *testing.T, v events.RoomVersion) {
	ctx := context.Background()
	rr := newRemoteRoom(t, v)
	s := rr.s

	// Accepted.
	m0 := rr.message("m0", rr.extremities())
	if id, err := s.ReceivePDU(ctx, "rs", m0.JSON); err != nil || id != m0.ID {
		t.Fatalf("accepted: %s %v", id, err)
	}
	if !rr.inTimeline(m0.ID) || !slices.Equal(rr.extremities(), []string{m0.ID}) {
		t.Fatalf("m0 in timeline %v, extremities %v", rr.inTimeline(m0.ID), rr.extremities())
	}
	// Again: nothing new.
	pos := s.p.Store.CurrentPos()
	if _, err := s.ReceivePDU(ctx, "rs", m0.JSON); err != nil || s.p.Store.CurrentPos() != pos {
		t.Fatalf("replay: %v, pos %d → %d", err, pos, s.p.Store.CurrentPos())
	}

	// A missing prev event is fetched (/get_missing_events) first.
	m1 := rr.message("m1", []string{m0.ID})
	m2 := rr.message("m2", []string{m1.ID})
	rr.f.missing[m1.ID] = m1.JSON
	if _, err := s.ReceivePDU(ctx, "rs", m2.JSON); err != nil {
		t.Fatalf("with a missing prev event: %v", err)
	}
	r1, err1 := s.p.Store.Event(ctx, m1.ID)
	r2, err2 := s.p.Store.Event(ctx, m2.ID)
	if err1 != nil || err2 != nil || r1.Pos >= r2.Pos {
		t.Fatalf("fetched m1 (%v, %d) before m2 (%v, %d)", err1, r1.Pos, err2, r2.Pos)
	}
	clear(rr.f.missing)

	// Not allowed by its auth events (Bob may not name the room): rejected,
	// remembered, and an event citing it is rejected too.
	empty := ""
	name := rr.pdu("m.room.name", &empty, `{"name":"Bob's"}`, []string{m2.ID}, rr.stateID("m.room.power_levels", ""), rr.bobJoin)
	if _, err := s.ReceivePDU(ctx, "rs", name.JSON); err == nil {
		t.Fatal("a name change by Bob was accepted")
	}
	if rr.status(name.ID) != store.StatusRejected || rr.inTimeline(name.ID) {
		t.Fatalf("rejected event: status %q, in timeline %v", rr.status(name.ID), rr.inTimeline(name.ID))
	}
	if _, err := s.ReceivePDU(ctx, "rs", name.JSON); err == nil {
		t.Fatal("a rejected event sent again was accepted")
	}
	cites := rr.pdu("m.room.message", nil, `{"body":"x"}`, []string{m2.ID}, rr.stateID("m.room.power_levels", ""), rr.bobJoin, name.ID)
	if _, err := s.ReceivePDU(ctx, "rs", cites.JSON); err == nil || rr.inTimeline(cites.ID) {
		t.Fatalf("an event citing a rejected one: %v", err)
	}

	// Another server may not send Bob's events, nor events for rooms
	// this server does not have.
	m3 := rr.message("m3", []string{m2.ID})
	if _, err := s.ReceivePDU(ctx, "evil", m3.JSON); err == nil {
		t.Fatal("rs's event from another origin was accepted")
	}
	if _, err := s.ReceivePDU(ctx, "rs", json.RawMessage(`{"room_id":"!nowhere:rs","type":"m.room.message"}`)); err == nil {
		t.Fatal("a PDU for an unknown room was accepted")
	}
	// A signature by another key: dropped.
	forged := *m3
	other, _ := events.GenerateSigningKey(rand.Reader)
	rr.f.keys["rs"] = other
	if _, err := s.ReceivePDU(ctx, "rs", forged.JSON); err == nil || rr.inTimeline(m3.ID) {
		t.Fatalf("an event with a signature rs's key does not verify: %v", err)
	}
	rr.f.keys["rs"] = rr.rsKey

	// Alice's events go to rs, which has a member.
	if _, err := s.Send(ctx, rr.id, "@alice:hs", Event{Type: "m.room.message", Content: json.RawMessage(`{"body":"hi rs"}`)}); err != nil {
		t.Fatal(err)
	}
	rr.f.mu.Lock()
	last := rr.f.queued[len(rr.f.queued)-1]
	rr.f.mu.Unlock()
	if !slices.Equal(last.dests, []string{"rs"}) || !json.Valid(last.pdu) {
		t.Fatalf("queued %v", last.dests)
	}
	aliceMsg := rr.extremities()

	// Bob is banned; an event of his built on the state before the ban
	// (allowed there) is soft-failed.
	if err := s.Ban(ctx, rr.id, "@alice:hs", "@bob:rs", ""); err != nil {
		t.Fatal(err)
	}
	rr.f.mu.Lock()
	banQueued := rr.f.queued[len(rr.f.queued)-1]
	rr.f.mu.Unlock()
	if !slices.Equal(banQueued.dests, []string{"rs"}) {
		t.Fatalf("the ban went to %v", banQueued.dests)
	}
	ext := rr.extremities()
	late := rr.message("late", aliceMsg)
	if _, err := s.ReceivePDU(ctx, "rs", late.JSON); err != nil {
		t.Fatalf("soft-failed event answered with an error: %v", err)
	}
	if rr.status(late.ID) != store.StatusSoftFailed || rr.inTimeline(late.ID) || !slices.Equal(rr.extremities(), ext) {
		t.Fatalf("soft-failed: status %q, in timeline %v, extremities %v (were %v)", rr.status(late.ID), rr.inTimeline(late.ID), rr.extremities(), ext)
	}
	// Carol leaves too: rs has no member left, its events are refused
	// outright.
	if err := s.Kick(ctx, rr.id, "@alice:hs", "@carol:rs", ""); err != nil {
		t.Fatal(err)
	}
	m4 := rr.message("m4", rr.extremities())
	if _, err := s.ReceivePDU(ctx, "rs", m4.JSON); err == nil || rr.inTimeline(m4.ID) {
		t.Fatalf("an event from a server with no member: %v", err)
	}
}

// TestReceivePDUGap: an event whose prev event cannot be had (the origin
// gives no missing events) is checked against the state the origin
// reports before it (/state_ids, unknown events fetched with /event and
// kept as outliers); accepted, it is a second forward extremity, and the
// room's current state is the resolution of both branches. Without that
// state, the event is refused and nothing changes.
func TestReceivePDUGap(t *testing.T) {
	ctx := context.Background()
	rr := newRemoteRoom(t, "11")
	s := rr.s
	before := rr.extremities()

	// Bob's new display name, which hs never sees, and a message after it.
	bob := "@bob:rs"
	topic := rr.pdu("m.room.member", &bob, `{"membership":"join","displayname":"Bob of rs"}`, before, rr.stateID("m.room.power_levels", ""), rr.stateID("m.room.join_rules", ""), rr.bobJoin)
	msg := rr.message("after the gap", []string{topic.ID})

	if _, err := s.ReceivePDU(ctx, "rs", msg.JSON); err == nil || rr.inTimeline(msg.ID) {
		t.Fatalf("without the state at the gap: %v", err)
	}

	// The local branch moves on meanwhile.
	if _, err := s.Send(ctx, rr.id, "@alice:hs", Event{Type: "m.room.message", Content: json.RawMessage(`{"body":"local"}`)}); err != nil {
		t.Fatal(err)
	}
	local := rr.extremities()

	r, _ := s.lockRoom(ctx, rr.id)
	var ids []string
	for _, ev := range r.state {
		ids = append(ids, ev.ID)
	}
	r.mu.Unlock()
	rr.f.stateIDs = append(ids, topic.ID)
	rr.f.events = map[string]json.RawMessage{topic.ID: topic.JSON}
	if _, err := s.ReceivePDU(ctx, "rs", msg.JSON); err != nil {
		t.Fatalf("with the state at the gap: %v", err)
	}
	if !rr.inTimeline(msg.ID) {
		t.Fatal("the event after the gap is not in the timeline")
	}
	if got := rr.extremities(); len(got) != 2 || !slices.Contains(got, msg.ID) || !slices.Contains(got, local[0]) {
		t.Fatalf("extremities %v, want %s and %v", got, msg.ID, local)
	}
	// Bob's new member event, in the local branch's view nowhere, came
	// with the resolution.
	if id := rr.stateID("m.room.member", bob); id != topic.ID {
		t.Fatalf("Bob's member event after the resolution: %s, want %s", id, topic.ID)
	}
	if !rr.inTimeline(topic.ID) {
		t.Fatal("the resolved state's event is not in the timeline")
	}
	// A local event now cites both branches.
	if _, err := s.Send(ctx, rr.id, "@alice:hs", Event{Type: "m.room.message", Content: json.RawMessage(`{"body":"merge"}`)}); err != nil {
		t.Fatal(err)
	}
	ext := rr.extremities()
	row, err := s.p.Store.Event(ctx, ext[0])
	if err != nil {
		t.Fatal(err)
	}
	merged, _ := events.Parse("11", row.JSON)
	if len(ext) != 1 || len(merged.PrevEvents) != 2 {
		t.Fatalf("after the merge: extremities %v, prev_events %v", ext, merged.PrevEvents)
	}
}

// TestACLAllows: m.room.server_acl as the spec's examples read it.
func TestACLAllows(t *testing.T) {
	cases := []struct {
		acl, server string
		want        bool
	}{
		{`{"allow":["*"]}`, "a.test", true},
		{`{"allow":["*"],"deny":["*.evil.test"]}`, "x.evil.test", false},
		{`{"allow":["*"],"deny":["*.evil.test"]}`, "evil.test", true},
		{`{"allow":["a.test"]}`, "b.test", false},
		{`{"allow":["*"]}`, "a.test:8448", true},
		{`{"allow":["*"],"deny":["a.test"]}`, "a.test:8448", false},
		{`{"allow":["*"],"allow_ip_literals":false}`, "1.2.3.4", false},
		{`{"allow":["*"],"allow_ip_literals":false}`, "[::1]:8448", false},
		{`{"allow":["*"]}`, "1.2.3.4", true},
		{`{}`, "a.test", false},
		{`not json`, "a.test", true},
	}
	for _, c := range cases {
		if got := aclAllows(json.RawMessage(c.acl), c.server); got != c.want {
			t.Errorf("aclAllows(%s, %s) = %v, want %v", c.acl, c.server, got, c.want)
		}
	}
}

// TestServerACL: once the room's m.room.server_acl denies rs, nothing more
// is queued to rs, and its PDUs and make_join are refused.
func TestServerACL(t *testing.T) {
	ctx := context.Background()
	rr := newRemoteRoom(t, "11")
	s := rr.s
	before := rr.extremities()
	empty := ""
	if _, err := s.Send(ctx, rr.id, "@alice:hs", Event{Type: "m.room.server_acl", StateKey: &empty, Content: json.RawMessage(`{"allow":["*"],"deny":["rs"]}`)}); err != nil {
		t.Fatal(err)
	}
	rr.f.mu.Lock()
	n := len(rr.f.queued)
	rr.f.mu.Unlock()
	if _, err := s.Send(ctx, rr.id, "@alice:hs", Event{Type: "m.room.message", Content: json.RawMessage(`{"body":"not for rs"}`)}); err != nil {
		t.Fatal(err)
	}
	rr.f.mu.Lock()
	defer rr.f.mu.Unlock()
	if len(rr.f.queued) != n {
		t.Fatalf("queued to %v after the ACL", rr.f.queued[n].dests)
	}
	m := rr.message("denied", before)
	if _, err := s.ReceivePDU(ctx, "rs", m.JSON); !isCode(err, "M_FORBIDDEN") || rr.inTimeline(m.ID) {
		t.Fatalf("a PDU of a denied server: %v", err)
	}
	if _, _, err := s.MakeJoin(ctx, "rs", rr.id, "@dave:rs", []string{"11"}); !isCode(err, "M_FORBIDDEN") {
		t.Fatalf("make_join from a denied server: %v", err)
	}
}

// TestRemoteInvite: an invite from rs into a room hs is not in is
// countersigned and kept (the invitee is invited); one from another
// origin, or for another server's user, is refused; declining it when rs
// does not answer make_leave is done here.
func TestRemoteInvite(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	rsKey, _ := events.GenerateSigningKey(rand.Reader)
	f := &fakeRemote{keys: map[string]events.SigningKey{"rs": rsKey}}
	s.SetRemote(f)
	invite := func(target string) *events.Event {
		ev, err := events.Build(events.Proto{
			RoomID: "!r:rs", Sender: "@carol:rs", Type: "m.room.member", StateKey: &target,
			Content: json.RawMessage(`{"membership":"invite"}`), OriginServerTS: time.Now().UnixMilli(),
			PrevEvents: []string{"$prev"}, AuthEvents: []string{"$create", "$pl", "$carol"}, Depth: 5,
		}, "11", "rs", rsKey)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	ev := invite("@dave:hs")
	stripped := []json.RawMessage{json.RawMessage(`{"type":"m.room.name","state_key":"","sender":"@carol:rs","content":{"name":"Over there"}}`)}
	if _, err := s.ReceiveInvite(ctx, "evil", "!r:rs", ev.ID, "11", ev.JSON, stripped); err == nil {
		t.Fatal("an invite from another origin was countersigned")
	}
	other := invite("@erin:elsewhere")
	if _, err := s.ReceiveInvite(ctx, "rs", "!r:rs", other.ID, "11", other.JSON, nil); err == nil {
		t.Fatal("an invite for another server's user was countersigned")
	}
	if _, err := s.ReceiveInvite(ctx, "rs", "!r:rs", ev.ID, "99", ev.JSON, nil); !isCode(err, "M_INCOMPATIBLE_ROOM_VERSION") {
		t.Fatalf("an unknown room version: %v", err)
	}
	signed, err := s.ReceiveInvite(ctx, "rs", "!r:rs", ev.ID, "11", ev.JSON, stripped)
	if err != nil {
		t.Fatal(err)
	}
	got, err := events.Parse("11", signed)
	if err != nil || got.ID != ev.ID || events.VerifyEvent(got, "hs", s.p.Key.ID, s.p.Key.Public()) != nil {
		t.Fatalf("countersigned invite: %v", err)
	}
	if m, _ := s.Membership(ctx, "!r:rs", "@dave:hs"); m != "invite" {
		t.Fatalf("membership after the invite: %q", m)
	}
	// Again (rs retried): still one invite.
	pos := s.p.Store.CurrentPos()
	if _, err := s.ReceiveInvite(ctx, "rs", "!r:rs", ev.ID, "11", ev.JSON, stripped); err != nil || s.p.Store.CurrentPos() != pos {
		t.Fatalf("a repeated invite: %v", err)
	}
	if err := s.Leave(ctx, "!r:rs", "@dave:hs", ""); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Membership(ctx, "!r:rs", "@dave:hs"); m != "leave" {
		t.Fatalf("membership after declining: %q", m)
	}
}

// TestReceivePDUEndlessChain: an origin whose /get_missing_events always
// answers events that cite more missing events is asked a bounded number
// of times; the PDU is refused (no state at the gap) and nothing of the
// chain is stored.
func TestReceivePDUEndlessChain(t *testing.T) {
	ctx := context.Background()
	rr := newRemoteRoom(t, "11")
	// Built before: the fake answers while the room is locked.
	var links []json.RawMessage
	for i := range 10 {
		links = append(links, rr.message(fmt.Sprint("chain", i), []string{fmt.Sprintf("$missing%d", i+1)}).JSON)
	}
	chain := &chainRemote{fakeRemote: rr.f, next: func() json.RawMessage {
		l := links[0]
		links = links[1:]
		return l
	}}
	rr.s.SetRemote(chain)
	head := rr.message("head", []string{"$missing0"})
	if _, err := rr.s.ReceivePDU(ctx, "rs", head.JSON); err == nil || rr.inTimeline(head.ID) {
		t.Fatalf("an event after an endless gap: %v", err)
	}
	if chain.asked > maxFetchRounds+1 {
		t.Fatalf("/get_missing_events asked %d times", chain.asked)
	}
}

// chainRemote answers /get_missing_events with one new event each time.
type chainRemote struct {
	*fakeRemote
	next  func() json.RawMessage
	asked int
}

func (c *chainRemote) MissingEvents(context.Context, string, string, []string, []string, int, int64) ([]json.RawMessage, error) {
	c.asked++
	return []json.RawMessage{c.next()}, nil
}
