package pducheck_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/federation"
	"github.com/salonhq/salon/homeserver/pducheck"
)

// The keyring is the Verifier the next stage passes.
var _ pducheck.Verifier = (*federation.Keyring)(nil)

const (
	roomID = "!room:a.test"
	alice  = "@alice:a.test"
	bob    = "@bob:b.test"
)

func key(t *testing.T, id string, seed byte) events.SigningKey {
	t.Helper()
	k, err := events.SigningKeyFromSeed(id, bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keys is a Verifier over a fixed table.
type keys map[string]ed25519.PublicKey

func (k keys) VerifyKey(ctx context.Context, server, keyID string, _ int64) (ed25519.PublicKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pub, ok := k[server+" "+keyID]
	if !ok {
		return nil, fmt.Errorf("no key %s of %s", keyID, server)
	}
	return pub, nil
}

// room is a Room over maps: events by ID, the rejected ones, and the
// states before and current.
type room struct {
	evs      map[string]*events.Event
	rejected map[string]bool
	create   *events.Event
	before   authrules.StateMap
	current  authrules.StateMap
	fail     error
}

func (r *room) AuthEvents(_ context.Context, ev *events.Event) ([]*events.Event, error) {
	if r.fail != nil {
		return nil, r.fail
	}
	out := make([]*events.Event, 0, len(ev.AuthEvents))
	for _, id := range ev.AuthEvents {
		ae, ok := r.evs[id]
		if !ok {
			return nil, fmt.Errorf("auth event %s not found", id)
		}
		out = append(out, ae)
	}
	return out, nil
}
func (r *room) Rejected(id string) bool                       { return r.rejected[id] }
func (r *room) Create(context.Context) (*events.Event, error) { return r.create, nil }
func (r *room) StateBefore(context.Context, *events.Event) (authrules.AuthState, error) {
	return r.before, nil
}
func (r *room) CurrentState(context.Context) (authrules.AuthState, error) { return r.current, nil }

// world is a v10 room created by alice on a.test, public, with bob of
// b.test joined, and the keys of both servers.
type world struct {
	t      *testing.T
	v      events.RoomVersion
	roomID string
	ka, kb events.SigningKey
	keys   keys
	room   *room
	ts     int64
	last   string
	st     authrules.StateMap
}

func newWorld(t *testing.T) *world { return newWorldV(t, events.RoomV10) }

// newWorldV is newWorld's room in version v; in v12 the create event names
// the room and power levels do not list alice, its creator.
func newWorldV(t *testing.T, v events.RoomVersion) *world {
	w := &world{t: t, v: v, roomID: roomID, ka: key(t, "ed25519:a", 1), kb: key(t, "ed25519:b", 2), st: authrules.StateMap{}}
	w.keys = keys{"a.test ed25519:a": w.ka.Public(), "b.test ed25519:b": w.kb.Public()}
	w.room = &room{evs: map[string]*events.Event{}, rejected: map[string]bool{}}
	if v.RoomIDFromCreateEvent() {
		w.roomID = ""
		w.room.create = w.state(alice, "m.room.create", "", `{"room_version":"12"}`)
		w.roomID = w.room.create.RoomID
		w.state(alice, "m.room.member", alice, `{"membership":"join"}`)
		w.state(alice, "m.room.power_levels", "", `{"users":{}}`)
	} else {
		w.room.create = w.state(alice, "m.room.create", "", fmt.Sprintf(`{"creator":%q,"room_version":%q}`, alice, v))
		w.state(alice, "m.room.member", alice, `{"membership":"join"}`)
		w.state(alice, "m.room.power_levels", "", fmt.Sprintf(`{"users":{%q:100}}`, alice))
	}
	w.state(alice, "m.room.join_rules", "", `{"join_rule":"public"}`)
	w.state(bob, "m.room.member", bob, `{"membership":"join"}`)
	w.room.before, w.room.current = w.copyState(), w.copyState()
	return w
}

func (w *world) copyState() authrules.StateMap {
	c := authrules.StateMap{}
	for k, e := range w.st {
		c[k] = e
	}
	return c
}

// build makes a signed event by sender citing the auth events the rules
// select from the world's state.
func (w *world) build(sender, typ string, stateKey *string, content string) *events.Event {
	w.t.Helper()
	w.ts++
	p := events.Proto{RoomID: w.roomID, Sender: sender, Type: typ, StateKey: stateKey,
		Content: json.RawMessage(content), OriginServerTS: 1000 + w.ts, Depth: w.ts}
	if w.last != "" {
		p.PrevEvents = []string{w.last}
	}
	for _, tp := range authrules.AuthEventTuples(w.v, typ, stateKey, sender, p.Content) {
		if e, ok := w.st[tp]; ok {
			p.AuthEvents = append(p.AuthEvents, e.ID)
		}
	}
	origin, k := "a.test", w.ka
	if sender == bob {
		origin, k = "b.test", w.kb
	}
	ev, err := events.Build(p, w.v, origin, k)
	if err != nil {
		w.t.Fatal(err)
	}
	return ev
}

func (w *world) state(sender, typ, stateKey, content string) *events.Event {
	ev := w.build(sender, typ, &stateKey, content)
	w.room.evs[ev.ID] = ev
	w.st[ev.Tuple()] = ev
	w.last = ev.ID
	return ev
}

func (w *world) message(sender, body string) *events.Event {
	return w.build(sender, "m.room.message", nil, fmt.Sprintf(`{"msgtype":"m.text","body":%q}`, body))
}

// edit changes the PDU's JSON object with f.
func edit(t *testing.T, pdu []byte, f func(m map[string]any)) []byte {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(pdu))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name     string
		pdu      func(w *world) []byte
		setup    func(w *world)
		want     pducheck.Outcome
		reason   error
		redacted bool
	}{
		{name: "accepted", pdu: func(w *world) []byte { return w.message(bob, "hi").JSON }, want: pducheck.Accepted},
		{name: "not JSON", pdu: func(*world) []byte { return []byte(`{"type":`) }, want: pducheck.Dropped, reason: pducheck.ErrInvalid},
		{
			name: "no auth_events field",
			pdu: func(w *world) []byte {
				return edit(t, w.message(bob, "hi").JSON, func(m map[string]any) { delete(m, "auth_events") })
			},
			want: pducheck.Dropped, reason: pducheck.ErrInvalid,
		},
		{
			name: "signed by another server than the sender's",
			pdu: func(w *world) []byte {
				return edit(t, w.message(bob, "hi").JSON, func(m map[string]any) {
					sigs := m["signatures"].(map[string]any)
					sigs["a.test"] = sigs["b.test"]
					delete(sigs, "b.test")
				})
			},
			want: pducheck.Dropped, reason: pducheck.ErrSignature,
		},
		{
			name: "signature broken by a changed origin_server_ts",
			pdu: func(w *world) []byte {
				return edit(t, w.message(bob, "hi").JSON, func(m map[string]any) { m["origin_server_ts"] = 5 })
			},
			want: pducheck.Dropped, reason: pducheck.ErrSignature,
		},
		{
			name:  "unknown signing key",
			pdu:   func(w *world) []byte { return w.message(bob, "hi").JSON },
			setup: func(w *world) { delete(w.keys, "b.test ed25519:b") },
			want:  pducheck.Dropped, reason: pducheck.ErrSignature,
		},
		{
			// The signature covers the redacted event, which has no body:
			// it still holds, the hash does not, and the event goes on
			// redacted.
			name: "content changed in transit: redacted, then accepted",
			pdu: func(w *world) []byte {
				return edit(t, w.message(bob, "hi").JSON, func(m map[string]any) {
					m["content"].(map[string]any)["body"] = "forged"
				})
			},
			want: pducheck.Accepted, redacted: true,
		},
		{
			name:  "cites a rejected auth event",
			pdu:   func(w *world) []byte { return w.message(bob, "hi").JSON },
			setup: func(w *world) { w.room.rejected[w.st.Member(bob).ID] = true },
			want:  pducheck.Rejected, reason: pducheck.ErrAuthEvents,
		},
		{
			// bob sets the power levels, which his level 0 does not allow
			// by his own auth events already.
			name: "not allowed by its auth events",
			pdu: func(w *world) []byte {
				return w.build(bob, "m.room.power_levels", ptr(""), fmt.Sprintf(`{"users":{%q:100,%q:100}}`, alice, bob)).JSON
			},
			want: pducheck.Rejected, reason: pducheck.ErrAuthEvents,
		},
		{
			name: "auth events the selection would not pick",
			pdu: func(w *world) []byte {
				ev := w.build(alice, "m.room.topic", ptr(""), `{"topic":"x"}`)
				// alice's event citing bob's membership: re-sign with it.
				p := events.Proto{RoomID: w.roomID, Sender: alice, Type: "m.room.topic", StateKey: ptr(""),
					Content: ev.Content, OriginServerTS: ev.OriginServerTS, Depth: ev.Depth, PrevEvents: ev.PrevEvents,
					AuthEvents: append(append([]string(nil), ev.AuthEvents...), w.st.Member(bob).ID)}
				out, err := events.Build(p, w.v, "a.test", w.ka)
				if err != nil {
					t.Fatal(err)
				}
				return out.JSON
			},
			want: pducheck.Rejected, reason: pducheck.ErrAuthEvents,
		},
		{
			// Its auth events say bob is joined; the state before it (other
			// branches merged in) says he had left.
			name: "not allowed by the state before it",
			pdu:  func(w *world) []byte { return w.message(bob, "hi").JSON },
			setup: func(w *world) {
				leave := w.build(bob, "m.room.member", ptr(bob), `{"membership":"leave"}`)
				w.room.before[leave.Tuple()] = leave
			},
			want: pducheck.Rejected, reason: pducheck.ErrStateBefore,
		},
		{
			name: "banned since: soft-failed",
			pdu:  func(w *world) []byte { return w.message(bob, "hi").JSON },
			setup: func(w *world) {
				ban := w.build(alice, "m.room.member", ptr(bob), `{"membership":"ban"}`)
				w.room.current[ban.Tuple()] = ban
			},
			want: pducheck.SoftFailed, reason: pducheck.ErrCurrentState,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.setup != nil {
				tc.setup(w)
			}
			got, err := pducheck.Check(context.Background(), w.v, tc.pdu(w), w.keys, w.room)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got.Outcome != tc.want || got.Redacted != tc.redacted {
				t.Fatalf("verdict %s (redacted %v, reason %v), want %s (redacted %v)", got.Outcome, got.Redacted, got.Reason, tc.want, tc.redacted)
			}
			if tc.reason == nil && got.Reason != nil {
				t.Fatalf("reason %v, want none", got.Reason)
			}
			if tc.reason != nil && !errors.Is(got.Reason, tc.reason) {
				t.Fatalf("reason %v, want %v", got.Reason, tc.reason)
			}
			if tc.redacted && bytes.Contains(got.Event.Content, []byte("forged")) {
				t.Fatalf("redacted event still has its content: %s", got.Event.Content)
			}
			t.Logf("%s: %v", got.Outcome, got.Reason)
		})
	}
}

func TestCheckCallerErrors(t *testing.T) {
	t.Run("room fails", func(t *testing.T) {
		w := newWorld(t)
		w.room.fail = errors.New("store down")
		if _, err := pducheck.Check(context.Background(), w.v, w.message(bob, "hi").JSON, w.keys, w.room); err == nil {
			t.Fatal("Check: nil error, want the room's")
		}
	})
	t.Run("context ends during the key lookup", func(t *testing.T) {
		w := newWorld(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := pducheck.Check(ctx, w.v, w.message(bob, "hi").JSON, w.keys, w.room)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Check: %v, want context.Canceled", err)
		}
	})
	t.Run("the create event itself", func(t *testing.T) {
		w := newWorld(t)
		got, err := pducheck.Check(context.Background(), w.v, w.room.create.JSON, w.keys, w.room)
		if err != nil || got.Outcome != pducheck.Accepted {
			t.Fatalf("Check: %v, %v; want accepted", got, err)
		}
	})
}

func ptr(s string) *string { return &s }

// TestCheckV12 runs the checks in a v12 room, whose events do not cite the
// create event: Check gets it from the Room.
func TestCheckV12(t *testing.T) {
	w := newWorldV(t, events.RoomV12)
	got, err := pducheck.Check(context.Background(), w.v, w.message(bob, "hi").JSON, w.keys, w.room)
	if err != nil || got.Outcome != pducheck.Accepted {
		t.Fatalf("Check: %+v, %v; want accepted", got, err)
	}
	// Without the create event the room ID names, the auth events fail.
	w.room.create = nil
	got, err = pducheck.Check(context.Background(), w.v, w.message(bob, "hi").JSON, w.keys, w.room)
	if err != nil || got.Outcome != pducheck.Rejected || !errors.Is(got.Reason, pducheck.ErrAuthEvents) {
		t.Fatalf("Check: %+v, %v; want rejected by its auth events", got, err)
	}
	t.Logf("%s: %v", got.Outcome, got.Reason)
}
