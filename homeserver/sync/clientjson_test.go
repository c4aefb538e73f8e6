package sync

import (
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

// TestClientWithUnsigned: an event's client format built from its shared
// part (built once per event, whoever syncs it) and a member's unsigned is
// byte for byte what ClientJSON(unsigned) writes, for every kind of value
// a sync puts in unsigned (an age, a membership, a transaction ID with
// characters JSON or json.Marshal escapes, stored prev_content, a
// redaction) and for events with and without state keys, redacts or
// unsigned.
func TestClientWithUnsigned(t *testing.T) {
	key, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk := "@a:t"
	empty := ""
	protos := map[string]events.Proto{
		"message": {RoomID: "!r:t", Sender: "@a:t", Type: "m.room.message",
			Content: json.RawMessage(`{"body":"<b>hé</b> & \u2028","msgtype":"m.text"}`)},
		"member": {RoomID: "!r:t", Sender: "@a:t", Type: "m.room.member", StateKey: &sk,
			Content: json.RawMessage(`{"displayname":"A","membership":"join"}`)},
		"topic": {RoomID: "!r:t", Sender: "@a:t", Type: "m.room.topic", StateKey: &empty, Content: json.RawMessage(`{"topic":"x"}`)},
		"redaction": {RoomID: "!r:t", Sender: "@a:t", Type: "m.room.redaction",
			Content: json.RawMessage(`{"redacts":"$x","reason":"spam"}`)},
	}
	unsigneds := map[string]map[string]any{
		"none":       nil,
		"empty":      {},
		"age":        {"age": int64(12)},
		"negative":   {"age": int64(-5)},
		"membership": {"age": int64(7), "membership": "join"},
		"txn": {"age": int64(7), "membership": "leave",
			"transaction_id": "m1733.0 <tx> & \"q\" \\ é \u2028 \x01"},
		"stored": {"age": int64(1), "prev_content": json.RawMessage(`{"membership": "invite", "x": "<y>"}`),
			"replaces_state": json.RawMessage(`"$old"`), "prev_sender": json.RawMessage(`"@b:t"`)},
		"redacted": {"redacted_because": json.RawMessage(`{"type":"m.room.redaction","content":{}}`),
			events.UnsignedDelayID: "syd_abc", "membership": "ban"},
	}
	for pname, p := range protos {
		ev, err := events.Build(p, events.RoomV11, "t", key)
		if err != nil {
			t.Fatalf("%s: %v", pname, err)
		}
		pe := &parsedEvent{ev: ev}
		for uname, u := range unsigneds {
			want, err := ev.ClientJSON(u)
			if err != nil {
				t.Fatal(err)
			}
			got, err := clientWithUnsigned(pe, u)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("%s with %s unsigned:\ngot  %s\nwant %s", pname, uname, got, want)
			}
		}
	}
}

// BenchmarkClientEventShared: one member's copy of a message (unsigned:
// age and membership) built whole, as every woken sync did, and from the
// event's shared client format.
func BenchmarkClientEventShared(b *testing.B) {
	key, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ev, err := events.Build(events.Proto{RoomID: "!abcdefghijklmnopqr:bench", Sender: "@b1234_567:bench", Type: "m.room.message",
		Content: json.RawMessage(`{"body":"1733350000000000000","msgtype":"m.text"}`)}, events.RoomV11, "bench", key)
	if err != nil {
		b.Fatal(err)
	}
	pe := &parsedEvent{ev: ev}
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			if _, err := ev.ClientJSON(map[string]any{"age": int64(12), "membership": "join"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shared", func(b *testing.B) {
		for b.Loop() {
			if _, err := clientWithUnsigned(pe, map[string]any{"age": int64(12), "membership": "join"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
