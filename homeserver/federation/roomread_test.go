package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

// fedPair is two federating services on loopback TLS: x asks, y answers
// with the Params edit gives it.
func fedPair(t *testing.T, edit func(*Params)) (x, y *Service) {
	t.Helper()
	ctx := context.Background()
	n := newTLSNet(t)
	yes := true
	xResolve, yResolve := map[string]string{}, map[string]string{}
	x, err := New(ctx, Params{ServerName: "x.example", Key: newKey(t), Store: openStore(t), Roots: n.roots,
		Config: Config{Enabled: &yes, Resolve: xResolve}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	yp := Params{ServerName: "y.example", Key: newKey(t), Store: openStore(t), Roots: n.roots,
		Config: Config{Enabled: &yes, Resolve: yResolve}}
	if edit != nil {
		edit(&yp)
	}
	y, err = New(ctx, yp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = y.Close() })
	xResolve["y.example"] = n.serve(t, "y.example", y.Handler())
	yResolve["x.example"] = n.serve(t, "x.example", x.Handler())
	return x, y
}

// fakeRooms is a RoomReader with one room, !r:y.example, whose events
// $a..$z x.example may read except $hidden.
type fakeRooms struct {
	acl       json.RawMessage
	lastLimit int
}

func (f *fakeRooms) check(origin, roomID, eventID string) error {
	if origin != "x.example" || roomID != "!r:y.example" {
		return mxerr.Forbid("no")
	}
	if eventID == "$hidden" {
		return mxerr.Forbid("not that one")
	}
	if eventID == "$missing" {
		return mxerr.NotFoundf("Event not found")
	}
	return nil
}

func pdu(id string) RoomPDU {
	return RoomPDU{EventID: id, JSON: json.RawMessage(`{"id":"` + id + `"}`)}
}

func (f *fakeRooms) Event(_ context.Context, origin, eventID string) (string, json.RawMessage, error) {
	if err := f.check(origin, "!r:y.example", eventID); err != nil {
		return "", nil, err
	}
	return "!r:y.example", pdu(eventID).JSON, nil
}
func (f *fakeRooms) State(_ context.Context, origin, roomID, eventID string) ([]RoomPDU, []RoomPDU, error) {
	if err := f.check(origin, roomID, eventID); err != nil {
		return nil, nil, err
	}
	return []RoomPDU{pdu("$s1"), pdu("$s2")}, []RoomPDU{pdu("$c")}, nil
}
func (f *fakeRooms) AuthChain(_ context.Context, origin, roomID, eventID string) ([]RoomPDU, error) {
	if err := f.check(origin, roomID, eventID); err != nil {
		return nil, err
	}
	return []RoomPDU{pdu("$c")}, nil
}
func (f *fakeRooms) Backfill(_ context.Context, origin, roomID string, from []string, limit int) ([]RoomPDU, error) {
	if err := f.check(origin, roomID, from[0]); err != nil {
		return nil, err
	}
	f.lastLimit = limit
	return []RoomPDU{pdu(from[0])}, nil
}
func (f *fakeRooms) MissingEvents(_ context.Context, origin, roomID string, earliest, latest []string, limit int, minDepth int64) ([]RoomPDU, error) {
	if err := f.check(origin, roomID, latest[0]); err != nil {
		return nil, err
	}
	f.lastLimit = limit
	return []RoomPDU{pdu("$m")}, nil
}
func (f *fakeRooms) ServerACL(context.Context, string) (json.RawMessage, error) { return f.acl, nil }

// TestServedRoomReads: each read endpoint answers in its shape, refuses
// what the RoomReader refuses with its error, checks its arguments (400),
// caps limits, and applies the room's server ACL.
func TestServedRoomReads(t *testing.T) {
	rooms := &fakeRooms{}
	x, _ := fedPair(t, func(p *Params) { p.Rooms = rooms })
	ctx := context.Background()
	get := func(path string, q url.Values) (map[string]any, error) {
		var out map[string]any
		err := x.Client.Get(ctx, "y.example", path, q, &out)
		return out, err
	}
	status := func(err error) (int, string) {
		var re *RemoteError
		if errors.As(err, &re) {
			return re.Status, re.Code
		}
		if err != nil {
			return -1, err.Error()
		}
		return 200, ""
	}
	const v1 = "/_matrix/federation/v1"
	for _, tc := range []struct {
		name   string
		path   string
		q      url.Values
		status int
		code   string
	}{
		{"event", v1 + "/event/$a", nil, 200, ""},
		{"event hidden", v1 + "/event/$hidden", nil, 403, "M_FORBIDDEN"},
		{"event unknown", v1 + "/event/$missing", nil, 404, "M_NOT_FOUND"},
		{"state", v1 + "/state/!r:y.example", url.Values{"event_id": {"$a"}}, 200, ""},
		{"state without event_id", v1 + "/state/!r:y.example", nil, 400, "M_MISSING_PARAM"},
		{"state of another room", v1 + "/state/!other:y.example", url.Values{"event_id": {"$a"}}, 403, "M_FORBIDDEN"},
		{"state bad room ID", v1 + "/state/nonsense", url.Values{"event_id": {"$a"}}, 400, "M_INVALID_PARAM"},
		{"state_ids", v1 + "/state_ids/!r:y.example", url.Values{"event_id": {"$a"}}, 200, ""},
		{"state_ids hidden", v1 + "/state_ids/!r:y.example", url.Values{"event_id": {"$hidden"}}, 403, "M_FORBIDDEN"},
		{"state_ids unknown", v1 + "/state_ids/!r:y.example", url.Values{"event_id": {"$missing"}}, 404, "M_NOT_FOUND"},
		{"event_auth", v1 + "/event_auth/!r:y.example/$a", nil, 200, ""},
		{"event_auth hidden", v1 + "/event_auth/!r:y.example/$hidden", nil, 403, "M_FORBIDDEN"},
		{"backfill", v1 + "/backfill/!r:y.example", url.Values{"v": {"$a"}, "limit": {"10"}}, 200, ""},
		{"backfill no limit", v1 + "/backfill/!r:y.example", url.Values{"v": {"$a"}}, 400, "M_MISSING_PARAM"},
		{"backfill bad limit", v1 + "/backfill/!r:y.example", url.Values{"v": {"$a"}, "limit": {"ten"}}, 400, "M_INVALID_PARAM"},
		{"backfill negative limit", v1 + "/backfill/!r:y.example", url.Values{"v": {"$a"}, "limit": {"-1"}}, 400, "M_INVALID_PARAM"},
		{"backfill no v", v1 + "/backfill/!r:y.example", url.Values{"limit": {"10"}}, 400, "M_MISSING_PARAM"},
		{"backfill hidden", v1 + "/backfill/!r:y.example", url.Values{"v": {"$hidden"}, "limit": {"10"}}, 403, "M_FORBIDDEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := get(tc.path, tc.q)
			if st, code := status(err); st != tc.status || code != tc.code {
				t.Fatalf("%d %s, want %d %s", st, code, tc.status, tc.code)
			}
			if tc.status == 200 && len(out) == 0 {
				t.Fatal("empty answer")
			}
		})
	}
	out, _ := get(v1+"/state_ids/!r:y.example", url.Values{"event_id": {"$a"}})
	if b, _ := json.Marshal(out); string(b) != `{"auth_chain_ids":["$c"],"pdu_ids":["$s1","$s2"]}` {
		t.Fatalf("state_ids: %s", b)
	}
	out, _ = get(v1+"/event/$a", nil)
	if pdus, _ := out["pdus"].([]any); len(pdus) != 1 || out["origin"] != "y.example" {
		t.Fatalf("event: %v", out)
	}
	if _, err := get(v1+"/backfill/!r:y.example", url.Values{"v": {"$a"}, "limit": {"100000"}}); err != nil || rooms.lastLimit != maxBackfill {
		t.Fatalf("a huge backfill limit: %v, asked for %d", err, rooms.lastLimit)
	}

	// get_missing_events: limit defaulted and capped, bad bodies 400.
	post := func(body any) (map[string]any, error) {
		var out map[string]any
		err := x.Client.Post(ctx, "y.example", v1+"/get_missing_events/!r:y.example", body, &out)
		return out, err
	}
	if out, err := post(map[string]any{"earliest_events": []string{"$e"}, "latest_events": []string{"$l"}}); err != nil || rooms.lastLimit != defaultMissing || len(out["events"].([]any)) != 1 {
		t.Fatalf("missing events: %v %v (limit %d)", out, err, rooms.lastLimit)
	}
	if _, err := post(map[string]any{"earliest_events": []string{}, "latest_events": []string{"$l"}, "limit": 5000}); err != nil || rooms.lastLimit != maxMissing {
		t.Fatalf("missing events, huge limit: %v (limit %d)", err, rooms.lastLimit)
	}
	for name, body := range map[string]any{
		"no latest":      map[string]any{"earliest_events": []string{}},
		"latest not ids": map[string]any{"latest_events": "x"},
		"negative limit": map[string]any{"latest_events": []string{"$l"}, "limit": -3},
	} {
		if _, err := post(body); func() bool { st, _ := status(err); return st != 400 }() {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := post(map[string]any{"latest_events": []string{"$hidden"}}); func() bool { st, _ := status(err); return st != 403 }() {
		t.Errorf("missing events after a hidden event: %v", err)
	}

	// The room's server ACL refuses x.example: every read about the room.
	rooms.acl = json.RawMessage(`{"allow":["*"],"deny":["x.example"]}`)
	for _, p := range []string{v1 + "/event/$a", v1 + "/event_auth/!r:y.example/$a"} {
		if _, err := get(p, nil); func() bool { st, code := status(err); return st != 403 || code != "M_FORBIDDEN" }() {
			t.Errorf("%s under a denying ACL: %v", p, err)
		}
	}
	if _, err := get(v1+"/state_ids/!r:y.example", url.Values{"event_id": {"$a"}}); err == nil {
		t.Error("state_ids under a denying ACL answered")
	}
	if _, err := post(map[string]any{"latest_events": []string{"$l"}}); err == nil {
		t.Error("missing events under a denying ACL answered")
	}
	rooms.acl = json.RawMessage(`{"allow":["x.example"]}`)
	if _, err := get(v1+"/event/$a", nil); err != nil {
		t.Errorf("allowed by the ACL: %v", err)
	}
}

// TestRoomReadsWithoutRooms: without a RoomReader, reads are refused.
func TestRoomReadsWithoutRooms(t *testing.T) {
	x, _ := fedPair(t, nil)
	err := x.Client.Get(context.Background(), "y.example", "/_matrix/federation/v1/event/$a", nil, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Status != http.StatusForbidden {
		t.Fatalf("%v", err)
	}
}
