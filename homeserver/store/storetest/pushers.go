package storetest

import (
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// testPushers: a pusher is keyed by user, app ID and push key; setting it
// again replaces it; without keepOthers the same app ID and push key of
// other users go; deleting removes only the one named.
func testPushers(t *testing.T, s store.Store) {
	p := store.Pusher{UserID: "@a:test", Kind: "http", AppID: "app", PushKey: "key1", AppDisplayName: "App",
		DeviceDisplayName: "Phone", Lang: "en", Data: []byte(`{"url":"https://gw/_matrix/push/v1/notify"}`), DeviceID: "D", CreatedTS: 1}
	list := func(user string) []store.Pusher {
		t.Helper()
		ps, err := s.Pushers(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	if err := s.SetPusher(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	p2 := p
	p2.PushKey, p2.Kind, p2.CreatedTS = "a@example.org", "email", 2
	if err := s.SetPusher(ctx, p2, false); err != nil {
		t.Fatal(err)
	}
	upd := p
	upd.Lang, upd.ProfileTag, upd.Data = "fr", "tag", []byte(`{"url":"https://gw2/_matrix/push/v1/notify","format":"event_id_only"}`)
	if err := s.SetPusher(ctx, upd, false); err != nil {
		t.Fatal(err)
	}
	ps := list("@a:test")
	if len(ps) != 2 || ps[0].Lang != "fr" || ps[0].ProfileTag != "tag" || string(ps[0].Data) != string(upd.Data) || ps[1].Kind != "email" || ps[0].DeviceID != "D" {
		t.Fatalf("pushers = %+v", ps)
	}
	// Another user with the same app and key: kept with append, else it
	// takes the key over.
	b := p
	b.UserID = "@b:test"
	if err := s.SetPusher(ctx, b, true); err != nil {
		t.Fatal(err)
	}
	if len(list("@a:test")) != 2 || len(list("@b:test")) != 1 {
		t.Fatal("append removed another user's pusher")
	}
	if err := s.SetPusher(ctx, b, false); err != nil {
		t.Fatal(err)
	}
	if ps := list("@a:test"); len(ps) != 1 || ps[0].Kind != "email" {
		t.Fatalf("without append, a's pusher with the same key stays: %+v", ps)
	}
	if err := s.DeletePusher(ctx, "@b:test", "app", "key1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePusher(ctx, "@b:test", "app", "missing"); err != nil {
		t.Fatal(err)
	}
	if len(list("@b:test")) != 0 || len(list("@a:test")) != 1 {
		t.Fatal("delete")
	}

	// RoomPushers: the pushers of one kind of the room's joined members.
	if _, err := s.PersistEvents(ctx, &store.EventBatch{NewRoom: &store.Room{RoomID: "!p:test", Version: "10", Creator: "@a:test", CreatedTS: 1},
		Events: []store.EventRow{member("!p:test", "$pa", "@a:test", "join"), member("!p:test", "$pc", "@c:test", "join"), member("!p:test", "$pb", "@b:test", "leave")}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"@a:test", "@b:test", "@c:test"} {
		q := p
		q.UserID, q.PushKey = u, "http-"+u
		if err := s.SetPusher(ctx, q, false); err != nil {
			t.Fatal(err)
		}
	}
	rp, err := s.RoomPushers(ctx, "!p:test", "http")
	if err != nil {
		t.Fatal(err)
	}
	if len(rp) != 2 || rp[0].UserID != "@a:test" || rp[1].UserID != "@c:test" || rp[0].PushKey != "http-@a:test" {
		t.Fatalf("room pushers = %+v", rp)
	}
	if rp, _ := s.RoomPushers(ctx, "!p:test", "email"); len(rp) != 1 || rp[0].UserID != "@a:test" {
		t.Fatalf("room email pushers = %+v", rp)
	}

	// A device's pushers go with it; a deactivated account loses all.
	for _, d := range []string{"D1", "D2"} {
		if err := s.UpsertDevice(ctx, store.Device{UserID: "@c:test", DeviceID: d, TokenHash: hash("tok-" + d), CreatedTS: 1}); err != nil {
			t.Fatal(err)
		}
		q := p
		q.UserID, q.PushKey, q.DeviceID = "@c:test", "key-"+d, d
		if err := s.SetPusher(ctx, q, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteDevices(ctx, "@c:test", []string{"D1"}, ""); err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, p := range list("@c:test") {
		left[p.PushKey] = true
	}
	if left["key-D1"] || !left["key-D2"] {
		t.Fatalf("after deleting D1: %v", left)
	}
	if _, err := s.DeleteDevices(ctx, "@c:test", nil, ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range list("@c:test") {
		if p.DeviceID == "D2" {
			t.Fatal("logging out every device kept D2's pusher")
		}
	}
	if err := s.CreateAccount(ctx, account("pa"), ""); err != nil {
		t.Fatal(err)
	}
	q := p
	q.UserID = "@pa:test"
	if err := s.SetPusher(ctx, q, true); err != nil {
		t.Fatal(err)
	}
	if err := s.DeactivateAccount(ctx, "pa"); err != nil {
		t.Fatal(err)
	}
	if len(list("@pa:test")) != 0 {
		t.Fatal("deactivated account kept its pushers")
	}
}
