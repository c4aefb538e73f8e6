package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func otk(id, val string) store.KeyJSON {
	return store.KeyJSON{KeyID: id, JSON: []byte(`{"key":"` + val + `"}`)}
}

func testUploadKeys(t *testing.T, s store.Store) {
	pos, err := s.UploadKeys(ctx, "@a:test", "D1", []byte(`{"device_id":"D1"}`),
		[]store.KeyJSON{otk("signed_curve25519:1", "k1"), otk("signed_curve25519:2", "k2"), otk("curve25519:3", "k3")},
		[]store.KeyJSON{otk("signed_curve25519:F", "f1")})
	if err != nil || pos == 0 {
		t.Fatalf("upload = %d, %v", pos, err)
	}
	if s.CurrentPos() != pos {
		t.Fatalf("head %d, change at %d", s.CurrentPos(), pos)
	}
	// The same device keys again: no change, no position.
	if p, err := s.UploadKeys(ctx, "@a:test", "D1", []byte(`{"device_id":"D1"}`), []store.KeyJSON{otk("signed_curve25519:1", "k1")}, nil); err != nil || p != 0 {
		t.Fatalf("same upload = %d, %v", p, err)
	}
	// A one-time key ID with another value: refused, nothing stored.
	_, err = s.UploadKeys(ctx, "@a:test", "D1", nil, []store.KeyJSON{otk("signed_curve25519:9", "new"), otk("signed_curve25519:2", "other")}, nil)
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("conflicting OTK: %v", err)
	}
	counts, err := s.OneTimeKeyCounts(ctx, "@a:test", "D1")
	if err != nil || counts["signed_curve25519"] != 2 || counts["curve25519"] != 1 || len(counts) != 2 {
		t.Fatalf("counts = %v, %v", counts, err)
	}
	fb, err := s.UnusedFallbackKeyTypes(ctx, "@a:test", "D1")
	if err != nil || !slices.Equal(fb, []string{"signed_curve25519"}) {
		t.Fatalf("fallback = %v, %v", fb, err)
	}
	if _, err := s.UploadKeys(ctx, "@b:test", "E1", []byte(`{"device_id":"E1"}`), nil, nil); err != nil {
		t.Fatal(err)
	}
	p2, err := s.UploadKeys(ctx, "@a:test", "D1", []byte(`{"device_id":"D1","v":2}`), nil, nil)
	if err != nil || p2 <= pos {
		t.Fatalf("changed keys = %d, %v", p2, err)
	}
	keys, err := s.DeviceKeys(ctx, []string{"@a:test", "@b:test", "@nobody:test"})
	if err != nil || len(keys) != 2 || string(keys[0].JSON) != `{"device_id":"D1","v":2}` || keys[1].DeviceID != "E1" {
		t.Fatalf("device keys = %+v, %v", keys, err)
	}
	changed, err := s.DeviceListChanges(ctx, pos, s.CurrentPos())
	if err != nil || !slices.Equal(changed, []string{"@a:test", "@b:test"}) {
		t.Fatalf("changes after %d = %v, %v", pos, changed, err)
	}
	changed, _ = s.DeviceListChanges(ctx, p2, s.CurrentPos())
	if len(changed) != 0 {
		t.Fatalf("changes after head = %v", changed)
	}
}

func testClaimKeys(t *testing.T, s store.Store) {
	if _, err := s.UploadKeys(ctx, "@a:test", "D1", nil,
		[]store.KeyJSON{otk("signed_curve25519:B", "kb"), otk("signed_curve25519:A", "ka")},
		[]store.KeyJSON{otk("signed_curve25519:F", "f")}); err != nil {
		t.Fatal(err)
	}
	// A later upload comes after them, whatever its key IDs.
	if _, err := s.UploadKeys(ctx, "@a:test", "D1", nil, []store.KeyJSON{otk("signed_curve25519:0", "k0")}, nil); err != nil {
		t.Fatal(err)
	}
	req := []store.ClaimRequest{{UserID: "@a:test", DeviceID: "D1", Algorithm: "signed_curve25519"}}
	var got []string
	for range 5 {
		k, err := s.ClaimKeys(ctx, req)
		if err != nil || len(k) != 1 {
			t.Fatalf("claim = %+v, %v", k, err)
		}
		got = append(got, k[0].KeyID)
	}
	want := []string{"signed_curve25519:B", "signed_curve25519:A", "signed_curve25519:0", "signed_curve25519:F", "signed_curve25519:F"}
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want %v", got, want)
	}
	if fb, _ := s.UnusedFallbackKeyTypes(ctx, "@a:test", "D1"); len(fb) != 0 {
		t.Fatalf("used fallback still unused: %v", fb)
	}
	// A new fallback key is unused again.
	if _, err := s.UploadKeys(ctx, "@a:test", "D1", nil, nil, []store.KeyJSON{otk("signed_curve25519:G", "g")}); err != nil {
		t.Fatal(err)
	}
	if fb, _ := s.UnusedFallbackKeyTypes(ctx, "@a:test", "D1"); len(fb) != 1 {
		t.Fatalf("new fallback: %v", fb)
	}
	k, err := s.ClaimKeys(ctx, []store.ClaimRequest{{UserID: "@a:test", DeviceID: "NOPE", Algorithm: "signed_curve25519"}})
	if err != nil || len(k) != 0 {
		t.Fatalf("claim of unknown device = %+v, %v", k, err)
	}
}

// testClaimRace has many claimers take one-time keys at once: each key
// goes to exactly one of them.
func testClaimRace(t *testing.T, s store.Store) {
	const keys, claimers = 40, 8
	var up []store.KeyJSON
	for i := range keys {
		up = append(up, otk(fmt.Sprintf("signed_curve25519:%03d", i), fmt.Sprint("k", i)))
	}
	if _, err := s.UploadKeys(ctx, "@a:test", "D1", nil, up, nil); err != nil {
		t.Fatal(err)
	}
	req := []store.ClaimRequest{{UserID: "@a:test", DeviceID: "D1", Algorithm: "signed_curve25519"}}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, claimers)
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range keys / claimers {
				k, err := s.ClaimKeys(ctx, req)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, x := range k {
					seen[x.KeyID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != keys {
		t.Fatalf("%d distinct keys handed out, want %d", len(seen), keys)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("key %s handed out %d times", id, n)
		}
	}
}

func testCrossSigning(t *testing.T, s store.Store) {
	p1, err := s.PutCrossSigningKeys(ctx, "@a:test", []store.KeyJSON{
		{KeyID: "master", JSON: []byte(`{"m":1}`)}, {KeyID: "self_signing", JSON: []byte(`{"s":1}`)},
	})
	if err != nil || p1 == 0 {
		t.Fatal(p1, err)
	}
	p2, err := s.PutCrossSigningKeys(ctx, "@a:test", []store.KeyJSON{{KeyID: "master", JSON: []byte(`{"m":2}`)}})
	if err != nil || p2 <= p1 {
		t.Fatal(p2, err)
	}
	keys, err := s.CrossSigningKeys(ctx, []string{"@a:test", "@b:test"})
	if err != nil || len(keys) != 2 || keys[0].KeyID != "master" || string(keys[0].JSON) != `{"m":2}` || keys[1].KeyID != "self_signing" {
		t.Fatalf("cross-signing keys = %+v, %v", keys, err)
	}
	p3, err := s.PutKeySignatures(ctx, []store.KeySignature{
		{TargetUser: "@a:test", TargetKey: "D1", SignerUser: "@a:test", SignerKeyID: "ed25519:SSK", Signature: "sig1"},
		{TargetUser: "@b:test", TargetKey: "MASTERB", SignerUser: "@a:test", SignerKeyID: "ed25519:USK", Signature: "sig2"},
	})
	if err != nil || p3 <= p2 {
		t.Fatal(p3, err)
	}
	sigs, err := s.KeySignatures(ctx, []string{"@b:test"})
	if err != nil || len(sigs) != 1 || sigs[0].Signature != "sig2" {
		t.Fatalf("sigs = %+v, %v", sigs, err)
	}
	changed, _ := s.DeviceListChanges(ctx, p2, p3)
	if !slices.Equal(changed, []string{"@a:test", "@b:test"}) {
		t.Fatalf("changes = %v", changed)
	}
	p4, err := s.MarkDeviceListChanged(ctx, "@c:test")
	if err != nil || p4 <= p3 {
		t.Fatal(p4, err)
	}
	if changed, _ := s.DeviceListChanges(ctx, p3, p4); !slices.Equal(changed, []string{"@c:test"}) {
		t.Fatalf("changes = %v", changed)
	}
}

func tdm(user, dev, typ string) store.ToDeviceMessage {
	return store.ToDeviceMessage{UserID: user, DeviceID: dev, Sender: "@s:test", Type: typ, Content: []byte(`{"t":"` + typ + `"}`)}
}

func testToDevice(t *testing.T, s store.Store) {
	txn := func(id string, body string) store.ToDeviceTxn {
		return store.ToDeviceTxn{UserID: "@s:test", DeviceID: "S", TxnID: id, BodyHash: []byte(body), TS: 100}
	}
	p1, err := s.AddToDevice(ctx, []store.ToDeviceMessage{tdm("@a:test", "D1", "one"), tdm("@a:test", "D2", "one")}, txn("t1", "h1"), 0)
	if err != nil || p1 == 0 {
		t.Fatal(p1, err)
	}
	if _, err := s.AddToDevice(ctx, []store.ToDeviceMessage{tdm("@a:test", "D1", "again")}, txn("t1", "h2"), 0); !errors.Is(err, store.ErrExists) {
		t.Fatalf("replayed txn: %v", err)
	}
	if h, err := s.ToDeviceTxnHash(ctx, "@s:test", "S", "t1"); err != nil || string(h) != "h1" {
		t.Fatalf("txn hash = %q, %v", h, err)
	}
	p2, err := s.AddToDevice(ctx, []store.ToDeviceMessage{tdm("@a:test", "D1", "two")}, txn("t2", "h"), 0)
	if err != nil || p2 <= p1 {
		t.Fatal(p2, err)
	}
	msgs, err := s.ToDevice(ctx, "@a:test", "D1", 0, s.CurrentPos(), 100)
	if err != nil || len(msgs) != 2 || msgs[0].Type != "one" || msgs[1].Type != "two" || msgs[0].Pos != p1 || string(msgs[1].Content) != `{"t":"two"}` {
		t.Fatalf("queue = %+v, %v", msgs, err)
	}
	if msgs, _ := s.ToDevice(ctx, "@a:test", "D1", p1, s.CurrentPos(), 100); len(msgs) != 1 {
		t.Fatalf("after p1: %+v", msgs)
	}
	if msgs, _ := s.ToDevice(ctx, "@a:test", "D1", 0, s.CurrentPos(), 1); len(msgs) != 1 || msgs[0].Type != "one" {
		t.Fatalf("limit 1: %+v", msgs)
	}
	// Full queue: nothing is queued.
	if _, err := s.AddToDevice(ctx, []store.ToDeviceMessage{tdm("@a:test", "D2", "x"), tdm("@a:test", "D1", "x")}, txn("t3", "h"), 2); !errors.Is(err, store.ErrQueueFull) {
		t.Fatalf("full queue: %v", err)
	}
	if msgs, _ := s.ToDevice(ctx, "@a:test", "D2", 0, s.CurrentPos(), 100); len(msgs) != 1 {
		t.Fatalf("refused batch was queued: %+v", msgs)
	}
	if has, err := s.HasToDeviceUpTo(ctx, "@a:test", "D1", p1); err != nil || !has {
		t.Fatal(has, err)
	}
	if n, err := s.AckToDevice(ctx, "@a:test", "D1", p1); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if has, _ := s.HasToDeviceUpTo(ctx, "@a:test", "D1", p1); has {
		t.Fatal("acked message still queued")
	}
	if msgs, _ := s.ToDevice(ctx, "@a:test", "D1", 0, s.CurrentPos(), 100); len(msgs) != 1 || msgs[0].Type != "two" {
		t.Fatalf("after ack: %+v", msgs)
	}
	// Emptied, then queued again: found again.
	if _, err := s.AckToDevice(ctx, "@a:test", "D1", s.CurrentPos()); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := s.ToDevice(ctx, "@a:test", "D1", 0, s.CurrentPos(), 100); len(msgs) != 0 {
		t.Fatalf("after acking all: %+v", msgs)
	}
	p3, err := s.AddToDevice(ctx, []store.ToDeviceMessage{tdm("@a:test", "D1", "three")}, store.ToDeviceTxn{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if msgs, _ := s.ToDevice(ctx, "@a:test", "D1", p2, s.CurrentPos(), 100); len(msgs) != 1 || msgs[0].Pos != p3 {
		t.Fatalf("queued after emptying: %+v", msgs)
	}
	if has, _ := s.HasToDeviceUpTo(ctx, "@a:test", "D1", p3); !has {
		t.Fatal("queued after emptying: not seen by HasToDeviceUpTo")
	}
	if err := s.ExpireToDeviceTxns(ctx, 101); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ToDeviceTxnHash(ctx, "@s:test", "S", "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired txn: %v", err)
	}
}

func testDeviceKeysNames(t *testing.T, s store.Store) {
	if err := s.UpsertDevice(ctx, device("@a:test", "D1", 40)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"D1", "D2"} {
		if _, err := s.UploadKeys(ctx, "@a:test", id, []byte(`{}`), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.DeviceKeys(ctx, []string{"@a:test"})
	if err != nil || len(keys) != 2 || keys[0].DisplayName != "dev D1" || keys[1].DisplayName != "" {
		t.Fatalf("names = %+v, %v", keys, err)
	}
	if err := s.UpsertDevice(ctx, device("@b:test", "E1", 41)); err != nil {
		t.Fatal(err)
	}
	ids, err := s.DeviceIDs(ctx, []string{"@a:test", "@b:test", "@c:test"})
	if err != nil || len(ids) != 2 || !slices.Equal(ids["@a:test"], []string{"D1"}) || !slices.Equal(ids["@b:test"], []string{"E1"}) {
		t.Fatalf("device IDs = %v, %v", ids, err)
	}
}

// testDeleteDeviceKeys: deleting a device deletes its keys, one-time keys
// and queue; deactivating deletes everything of the user.
func testDeleteDeviceKeys(t *testing.T, s store.Store) {
	for i, id := range []string{"D1", "D2"} {
		if err := s.UpsertDevice(ctx, device("@a:test", id, byte(20+i))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UploadKeys(ctx, "@a:test", id, []byte(`{"d":"`+id+`"}`), []store.KeyJSON{otk("signed_curve25519:1", id)}, []store.KeyJSON{otk("signed_curve25519:F", id)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddToDevice(ctx, []store.ToDeviceMessage{tdm("@a:test", id, "m")}, store.ToDeviceTxn{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteDevices(ctx, "@a:test", []string{"D1"}, ""); err != nil {
		t.Fatal(err)
	}
	keys, _ := s.DeviceKeys(ctx, []string{"@a:test"})
	if len(keys) != 1 || keys[0].DeviceID != "D2" {
		t.Fatalf("keys after delete = %+v", keys)
	}
	if c, _ := s.OneTimeKeyCounts(ctx, "@a:test", "D1"); len(c) != 0 {
		t.Fatalf("OTKs left: %v", c)
	}
	if fb, _ := s.UnusedFallbackKeyTypes(ctx, "@a:test", "D1"); len(fb) != 0 {
		t.Fatalf("fallback left: %v", fb)
	}
	if msgs, _ := s.ToDevice(ctx, "@a:test", "D1", 0, s.CurrentPos(), 10); len(msgs) != 0 {
		t.Fatalf("queue left: %v", msgs)
	}
	if err := s.CreateAccount(ctx, account("a"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutCrossSigningKeys(ctx, "@a:test", []store.KeyJSON{{KeyID: "master", JSON: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeactivateAccount(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.DeviceKeys(ctx, []string{"@a:test"}); len(keys) != 0 {
		t.Fatalf("keys after deactivation: %+v", keys)
	}
	if keys, _ := s.CrossSigningKeys(ctx, []string{"@a:test"}); len(keys) != 0 {
		t.Fatalf("cross-signing keys after deactivation: %+v", keys)
	}
}

func testDehydrated(t *testing.T, s store.Store) {
	if _, err := s.PutDehydratedDevice(ctx, store.DehydratedDevice{UserID: "@a:test", DeviceID: "DH1", DeviceData: []byte(`{}`)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("dehydrated device without a device row: %v", err)
	}
	for i, id := range []string{"DH1", "DH2"} {
		if err := s.UpsertDevice(ctx, device("@a:test", id, byte(30+i))); err != nil {
			t.Fatal(err)
		}
	}
	if old, err := s.PutDehydratedDevice(ctx, store.DehydratedDevice{UserID: "@a:test", DeviceID: "DH1", DeviceData: []byte(`{"v":1}`)}); err != nil || old != "" {
		t.Fatal(old, err)
	}
	if _, err := s.UploadKeys(ctx, "@a:test", "DH1", []byte(`{}`), nil, nil); err != nil {
		t.Fatal(err)
	}
	old, err := s.PutDehydratedDevice(ctx, store.DehydratedDevice{UserID: "@a:test", DeviceID: "DH2", DeviceData: []byte(`{"v":2}`)})
	if err != nil || old != "DH1" {
		t.Fatal(old, err)
	}
	if _, err := s.Device(ctx, "@a:test", "DH1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replaced dehydrated device still a device: %v", err)
	}
	if keys, _ := s.DeviceKeys(ctx, []string{"@a:test"}); len(keys) != 0 {
		t.Fatalf("replaced dehydrated device's keys: %+v", keys)
	}
	d, err := s.DehydratedDevice(ctx, "@a:test")
	if err != nil || d.DeviceID != "DH2" || !bytes.Equal(d.DeviceData, []byte(`{"v":2}`)) {
		t.Fatal(d, err)
	}
	if id, err := s.DeleteDehydratedDevice(ctx, "@a:test"); err != nil || id != "DH2" {
		t.Fatal(id, err)
	}
	if _, err := s.DehydratedDevice(ctx, "@a:test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.DeleteDehydratedDevice(ctx, "@a:test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
}

// RunReopenKeys checks that stream positions used only by to-device
// messages are not handed out again after a restart, even once the
// messages were delivered and deleted, and that queued messages survive.
func RunReopenKeys(t *testing.T, open Reopener) {
	s, reopen := open(t)
	p1, err := s.AddToDevice(ctx, []store.ToDeviceMessage{tdm("@a:test", "D1", "one")}, store.ToDeviceTxn{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.AddToDevice(ctx, []store.ToDeviceMessage{tdm("@a:test", "D1", "two")}, store.ToDeviceTxn{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AckToDevice(ctx, "@a:test", "D1", p1); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if s.CurrentPos() < p2 {
		t.Fatalf("head after restart %d, before %d", s.CurrentPos(), p2)
	}
	msgs, err := s.ToDevice(ctx, "@a:test", "D1", p1, s.CurrentPos(), 10)
	if err != nil || len(msgs) != 1 || msgs[0].Type != "two" {
		t.Fatalf("queue after restart = %+v, %v", msgs, err)
	}
	if _, err := s.AckToDevice(ctx, "@a:test", "D1", p2); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if s.CurrentPos() < p2 {
		t.Fatalf("head after emptied queue and restart %d, before %d", s.CurrentPos(), p2)
	}
	p3, err := s.MarkDeviceListChanged(ctx, "@b:test")
	if err != nil || p3 <= p2 {
		t.Fatal(p3, err)
	}
	s = reopen(t, s)
	if c, err := s.DeviceListChanges(ctx, p2, s.CurrentPos()); err != nil || !slices.Equal(c, []string{"@b:test"}) {
		t.Fatalf("changes after restart = %v, %v", c, err)
	}
}

// testKeyCountsFollowWrites: the one-time key counts and unused fallback
// types every /sync reports (which the store may remember between writes)
// follow each write that changes them, when they were read just before:
// an upload, a claim of one-time keys, a claim of the fallback key, a new
// fallback key, the device's deletion and a new device of the same ID,
// and the account's deactivation.
func testKeyCountsFollowWrites(t *testing.T, s store.Store) {
	const u = "@kc:test"
	if err := s.CreateAccount(ctx, account("kc"), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertDevice(ctx, device(u, "D1", 40)); err != nil {
		t.Fatal(err)
	}
	expect := func(step string, otks int, fallbacks []string) {
		t.Helper()
		// Twice: the second read may come from memory.
		for range 2 {
			c, err := s.OneTimeKeyCounts(ctx, u, "D1")
			if err != nil || c["signed_curve25519"] != otks || (otks == 0 && len(c) != 0) {
				t.Fatalf("%s: counts %v, %v; want %d", step, c, err, otks)
			}
			fb, err := s.UnusedFallbackKeyTypes(ctx, u, "D1")
			if err != nil || !slices.Equal(fb, fallbacks) {
				t.Fatalf("%s: fallback types %v, %v; want %v", step, fb, err, fallbacks)
			}
			// The answers are the caller's to change.
			if c != nil {
				c["signed_curve25519"] = -1
			}
			if len(fb) > 0 {
				fb[0] = "changed"
			}
		}
	}
	expect("no keys", 0, []string{})
	if _, err := s.UploadKeys(ctx, u, "D1", []byte(`{"d":1}`), []store.KeyJSON{otk("signed_curve25519:1", "a"), otk("signed_curve25519:2", "b")},
		[]store.KeyJSON{otk("signed_curve25519:F", "f")}); err != nil {
		t.Fatal(err)
	}
	expect("uploaded", 2, []string{"signed_curve25519"})
	claim := []store.ClaimRequest{{UserID: u, DeviceID: "D1", Algorithm: "signed_curve25519"}}
	for i, want := range []int{1, 0} {
		if got, err := s.ClaimKeys(ctx, claim); err != nil || len(got) != 1 {
			t.Fatalf("claim %d: %v, %v", i, got, err)
		}
		expect(fmt.Sprintf("claim %d", i), want, []string{"signed_curve25519"})
	}
	if got, err := s.ClaimKeys(ctx, claim); err != nil || len(got) != 1 || got[0].KeyID != "signed_curve25519:F" {
		t.Fatalf("claim of the fallback: %v, %v", got, err)
	}
	expect("fallback used", 0, []string{})
	if _, err := s.UploadKeys(ctx, u, "D1", nil, []store.KeyJSON{otk("signed_curve25519:3", "c")}, []store.KeyJSON{otk("signed_curve25519:G", "g")}); err != nil {
		t.Fatal(err)
	}
	expect("uploaded again", 1, []string{"signed_curve25519"})
	if _, err := s.DeleteDevices(ctx, u, []string{"D1"}, ""); err != nil {
		t.Fatal(err)
	}
	expect("device deleted", 0, []string{})
	if err := s.UpsertDevice(ctx, device(u, "D1", 41)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UploadKeys(ctx, u, "D1", nil, []store.KeyJSON{otk("signed_curve25519:4", "d")}, nil); err != nil {
		t.Fatal(err)
	}
	expect("same device ID again", 1, []string{})
	if err := s.DeactivateAccount(ctx, "kc"); err != nil {
		t.Fatal(err)
	}
	expect("deactivated", 0, []string{})
}
