package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

type fakeResidents struct{ servers []string }

func (f fakeResidents) JoinedServers(context.Context, string) ([]string, error) {
	return append([]string(nil), f.servers...), nil
}
func (f fakeResidents) ServersSharing(context.Context, string) ([]string, error) {
	return append([]string(nil), f.servers...), nil
}

// TestOutboundEDUs: typing, receipts, device-list updates (stream_id
// and prev_id) and presence are queued for the other servers with
// members, never for this server, a denied server or one the room's
// server ACL refuses.
func TestOutboundEDUs(t *testing.T) {
	ctx := context.Background()
	yes := true
	st := openStore(t)
	rooms := &fakeRooms{}
	s, err := New(ctx, Params{ServerName: "x.example", Key: newKey(t), Store: st, Rooms: rooms,
		Residents: fakeResidents{servers: []string{"x.example", "y.example", "z.example", "denied.example"}},
		Config:    Config{Enabled: &yes, Deny: []string{"denied.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	queued := func(dest string) []string {
		t.Helper()
		_, items, err := st.NextFederationTxn(ctx, dest, "t"+dest+string(rune('a'+len(dest))), 50, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range items {
			out = append(out, string(it.Body))
		}
		_ = st.DeleteFederationTxn(ctx, dest, "t"+dest+string(rune('a'+len(dest))))
		return out
	}
	if err := s.SendTyping(ctx, "!r:x.example", "@alice:x.example", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SendReceipt(ctx, "!r:x.example", "@alice:x.example", "$e", "main", 42); err != nil {
		t.Fatal(err)
	}
	for _, st := range []int64{7, 9} {
		if err := s.SendDeviceListUpdate(ctx, DeviceListUpdate{UserID: "@alice:x.example", DeviceID: "DEV", StreamID: st,
			Keys: json.RawMessage(`{"device_id":"DEV"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SendPresence(ctx, "@alice:x.example", "online", "in the lab", 0, true); err != nil {
		t.Fatal(err)
	}
	y := queued("y.example")
	want := []string{
		`"edu_type":"m.typing"`, `"typing":true`,
		`"edu_type":"m.receipt"`, `"m.read":{"@alice:x.example":{"data":{"thread_id":"main","ts":42},"event_ids":["$e"]}}`,
		`"prev_id":[],"stream_id":7`, `"prev_id":[7],"stream_id":9`, `"keys":{"device_id":"DEV"}`,
		`"edu_type":"m.presence"`, `"status_msg":"in the lab"`,
	}
	all := strings.Join(y, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("y.example's queue lacks %s:\n%s", w, all)
		}
	}
	if len(y) != 5 || len(queued("z.example")) != 5 {
		t.Fatalf("%d EDUs for y.example", len(y))
	}
	if q := queued("x.example"); len(q) != 0 {
		t.Fatalf("EDUs to this server: %v", q)
	}
	if q := queued("denied.example"); len(q) != 0 {
		t.Fatalf("EDUs to a denied server: %v", q)
	}
	// The room's ACL refuses z.example: no typing or receipts for it.
	rooms.acl = json.RawMessage(`{"allow":["*"],"deny":["z.example"]}`)
	_ = s.SendTyping(ctx, "!r:x.example", "@alice:x.example", false)
	_ = s.SendReceipt(ctx, "!r:x.example", "@alice:x.example", "$f", "", 43)
	if q := queued("z.example"); len(q) != 0 {
		t.Fatalf("room EDUs to a server the ACL refuses: %v", q)
	}
	if q := queued("y.example"); len(q) != 2 || strings.Contains(q[1], "thread_id") {
		t.Fatalf("y.example: %v", q)
	}
}

type eduRecorder struct {
	mu       sync.Mutex
	typing   []string
	lists    []string
	presence []string
}

func (e *eduRecorder) Typing(_ context.Context, roomID, userID string, typing bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.typing = append(e.typing, roomID+" "+userID)
	return nil
}
func (e *eduRecorder) Receipt(context.Context, string, string, string, string, string, int64) error {
	return nil
}
func (e *eduRecorder) Presence(_ context.Context, userID, presence, msg string, ago int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.presence = append(e.presence, fmt.Sprintf("%s %s %q %d", userID, presence, msg, ago))
	return nil
}
func (e *eduRecorder) DeviceListUpdate(_ context.Context, userID, deviceID string, deleted bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lists = append(e.lists, userID+" "+deviceID)
	return nil
}

// TestInboundEDUsACLAndSigningKeys: typing about a room whose server ACL
// refuses the sender's server is dropped; m.signing_key_update of the
// origin's user is a device-list change, another server's user is refused;
// m.presence likewise.
func TestInboundEDUsACLAndSigningKeys(t *testing.T) {
	rec := &eduRecorder{}
	rooms := &fakeRooms{}
	x, _ := fedPair(t, func(p *Params) { p.EDUs, p.Rooms = rec, rooms })
	ctx := context.Background()
	txn := func(id string, edus ...map[string]any) map[string]any {
		var out map[string]any
		body := map[string]any{"origin": "x.example", "origin_server_ts": 1, "pdus": []any{}, "edus": edus}
		if err := x.Client.Put(ctx, "y.example", "/_matrix/federation/v1/send/"+id, body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	typing := map[string]any{"edu_type": "m.typing", "content": map[string]any{"room_id": "!r:y.example", "user_id": "@a:x.example", "typing": true}}
	txn("t1", typing)
	rooms.acl = json.RawMessage(`{"allow":["*"],"deny":["x.example"]}`)
	txn("t2", typing)
	txn("t3", map[string]any{"edu_type": "m.signing_key_update", "content": map[string]any{"user_id": "@a:x.example", "master_key": map[string]any{}}},
		map[string]any{"edu_type": "m.signing_key_update", "content": map[string]any{"user_id": "@b:elsewhere.example"}})
	// Presence of the origin's users only; another server's user is
	// refused with the rest of that EDU.
	txn("t4", map[string]any{"edu_type": "m.presence", "content": map[string]any{"push": []any{
		map[string]any{"user_id": "@a:x.example", "presence": "online", "status_msg": "in the lab", "last_active_ago": 5000, "currently_active": true},
	}}}, map[string]any{"edu_type": "m.presence", "content": map[string]any{"push": []any{
		map[string]any{"user_id": "@b:elsewhere.example", "presence": "online"},
	}}})
	rec.mu.Lock()
	if want := []string{`@a:x.example online "in the lab" 5000`}; !slices.Equal(rec.presence, want) {
		t.Fatalf("presence delivered %v, want %v", rec.presence, want)
	}
	defer rec.mu.Unlock()
	if len(rec.typing) != 1 {
		t.Fatalf("typing delivered %v", rec.typing)
	}
	if len(rec.lists) != 1 || rec.lists[0] != "@a:x.example " {
		t.Fatalf("signing key updates: %v", rec.lists)
	}
}
