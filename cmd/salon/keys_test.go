package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/mxtest"
)

// e2eDevice is a test device's ed25519 identity: it signs its keys as a
// real client does.
type e2eDevice struct {
	c    *mxtest.Client
	priv ed25519.PrivateKey
	pub  string
}

func newE2EDevice(t *testing.T, c *mxtest.Client) *e2eDevice {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &e2eDevice{c: c, priv: priv, pub: events.EncodeBase64(pub)}
}

// sign adds signatures[signer][keyID] over obj (without signatures and
// unsigned), as the appendices' "Signing JSON" says.
func sign(t *testing.T, obj map[string]any, signer, keyID string, priv ed25519.PrivateKey) map[string]any {
	t.Helper()
	bare := map[string]any{}
	for k, v := range obj {
		if k != "signatures" && k != "unsigned" {
			bare[k] = v
		}
	}
	raw, err := json.Marshal(bare)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := events.CanonicalJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	sigs, _ := obj["signatures"].(map[string]any)
	if sigs == nil {
		sigs = map[string]any{}
	}
	mine, _ := sigs[signer].(map[string]any)
	if mine == nil {
		mine = map[string]any{}
	}
	mine[keyID] = events.EncodeBase64(ed25519.Sign(priv, canon))
	sigs[signer] = mine
	obj["signatures"] = sigs
	return obj
}

func (d *e2eDevice) deviceKeys(t *testing.T) map[string]any {
	return sign(t, map[string]any{
		"user_id": d.c.UserID, "device_id": d.c.DeviceID,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys": map[string]any{
			"curve25519:" + d.c.DeviceID: "curve" + d.c.DeviceID,
			"ed25519:" + d.c.DeviceID:    d.pub,
		},
	}, d.c.UserID, "ed25519:"+d.c.DeviceID, d.priv)
}

func (d *e2eDevice) otks(t *testing.T, prefix string, n int) map[string]any {
	out := map[string]any{}
	for i := range n {
		id := fmt.Sprintf("%s%03d", prefix, i)
		out["signed_curve25519:"+id] = sign(t, map[string]any{"key": "otk-" + id}, d.c.UserID, "ed25519:"+d.c.DeviceID, d.priv)
	}
	return out
}

type keysSync struct {
	NextBatch   string `json:"next_batch"`
	DeviceLists struct {
		Changed []string `json:"changed"`
		Left    []string `json:"left"`
	} `json:"device_lists"`
	OTKCount  map[string]int `json:"device_one_time_keys_count"`
	Fallbacks []string       `json:"device_unused_fallback_key_types"`
	ToDevice  struct {
		Events []struct {
			Sender  string         `json:"sender"`
			Type    string         `json:"type"`
			Content map[string]any `json:"content"`
		} `json:"events"`
	} `json:"to_device"`
}

func syncKeys(t *testing.T, c *mxtest.Client, since string, timeout time.Duration) keysSync {
	t.Helper()
	q := url.Values{"timeout": {fmt.Sprint(timeout.Milliseconds())}}
	if since != "" {
		q.Set("since", since)
	}
	r := c.Must(200, "GET", "/_matrix/client/v3/sync?"+q.Encode(), nil)
	var s keysSync
	if err := json.Unmarshal(r.Raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// syncUntil syncs (long-polling) until ok holds, and returns that answer.
func syncUntil(t *testing.T, c *mxtest.Client, since string, ok func(keysSync) bool) keysSync {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := syncKeys(t, c, since, 5*time.Second)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: condition not met by sync; last answer %+v", c.UserID, s)
		}
		since = s.NextBatch
	}
}

// TestKeysOverHTTP: device keys, one-time and fallback keys, queries,
// claims, device lists and cross-signing between alice and bob, who share
// a room, with eve outside it.
func TestKeysOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		eve := mxtest.Register(t, srv.URL, "eve", "password eve")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "invite": []string{bob.UserID}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", room), map[string]any{})
		ad := newE2EDevice(t, alice)

		bobTok := syncKeys(t, bob, "", 0).NextBatch
		eveTok := syncKeys(t, eve, "", 0).NextBatch

		// bob waits; alice uploads her keys: bob's poll wakes with her
		// in device_lists.changed.
		woke := make(chan keysSync, 1)
		go func() { woke <- syncKeys(t, bob, bobTok, 30*time.Second) }()
		waitPolling(t, srv, bob.UserID)
		up := alice.Must(200, "POST", "/_matrix/client/v3/keys/upload", map[string]any{
			"device_keys":   ad.deviceKeys(t),
			"one_time_keys": ad.otks(t, "A", 5),
			"fallback_keys": map[string]any{"signed_curve25519:FB": sign(t, map[string]any{"key": "fb", "fallback": true}, alice.UserID, "ed25519:"+alice.DeviceID, ad.priv)},
		})
		if n := up.Body["one_time_key_counts"].(map[string]any)["signed_curve25519"]; n != float64(5) {
			t.Fatalf("counts after upload: %s", up.Raw)
		}
		var got keysSync
		select {
		case got = <-woke:
		case <-time.After(30 * time.Second):
			t.Fatal("bob's long-poll did not wake for alice's keys")
		}
		if !slices.Contains(got.DeviceLists.Changed, alice.UserID) {
			got = syncUntil(t, bob, got.NextBatch, func(s keysSync) bool { return slices.Contains(s.DeviceLists.Changed, alice.UserID) })
		}
		// eve shares no room with alice: she is never told.
		if s := syncKeys(t, eve, eveTok, 0); slices.Contains(s.DeviceLists.Changed, alice.UserID) {
			t.Fatalf("eve told of alice's devices: %+v", s.DeviceLists)
		}
		changes := bob.Must(200, "GET", "/_matrix/client/v3/keys/changes?"+url.Values{"from": {bobTok}, "to": {got.NextBatch}}.Encode(), nil)
		if !strings.Contains(string(changes.Raw), alice.UserID) {
			t.Fatalf("/keys/changes: %s", changes.Raw)
		}

		// Bad uploads change nothing. Required fields missing: M_BAD_JSON.
		alice.MustErr(400, "M_BAD_JSON", "POST", "/_matrix/client/v3/keys/upload", map[string]any{
			"device_keys": map[string]any{"user_id": alice.UserID, "device_id": alice.DeviceID}})
		other := ad.deviceKeys(t)
		other["device_id"] = "SOMEONEELSE"
		sign(t, other, alice.UserID, "ed25519:"+alice.DeviceID, ad.priv)
		alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": other})
		forged := ad.deviceKeys(t)
		forged["algorithms"] = []string{"m.megolm.v1.aes-sha2"} // signature no longer matches
		alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": forged})
		bobsKeys := newE2EDevice(t, bob).deviceKeys(t)
		alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": bobsKeys})
		newIdentity := newE2EDevice(t, alice)
		alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": newIdentity.deviceKeys(t)})
		conflict := ad.otks(t, "Z", 1)
		conflict["signed_curve25519:A000"] = map[string]any{"key": "a different key"}
		alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/keys/upload", map[string]any{"one_time_keys": conflict})
		alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/keys/upload", map[string]any{"one_time_keys": map[string]any{"nocolon": "k"}})
		alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/keys/upload", map[string]any{"one_time_keys": map[string]any{"bad alg:x": "k"}})
		// The same OTKs again are fine (a retried upload).
		again := alice.Must(200, "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": ad.deviceKeys(t), "one_time_keys": ad.otks(t, "A", 5)})
		if n := again.Body["one_time_key_counts"].(map[string]any)["signed_curve25519"]; n != float64(5) {
			t.Fatalf("counts after bad uploads: %s", again.Raw)
		}

		// bob queries alice's devices.
		q := bob.Must(200, "POST", "/_matrix/client/v3/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}})
		var qr struct {
			DeviceKeys map[string]map[string]map[string]any `json:"device_keys"`
		}
		_ = json.Unmarshal(q.Raw, &qr)
		dk := qr.DeviceKeys[alice.UserID][alice.DeviceID]
		if dk == nil || dk["keys"].(map[string]any)["ed25519:"+alice.DeviceID] != ad.pub {
			t.Fatalf("query: %s", q.Raw)
		}

		// Claims: the five one-time keys, each once, then the fallback key.
		claimed := map[string]bool{}
		for i := range 7 {
			c := bob.Must(200, "POST", "/_matrix/client/v3/keys/claim", map[string]any{"one_time_keys": map[string]any{alice.UserID: map[string]string{alice.DeviceID: "signed_curve25519"}}})
			var cr struct {
				OTK map[string]map[string]map[string]any `json:"one_time_keys"`
			}
			_ = json.Unmarshal(c.Raw, &cr)
			keys := cr.OTK[alice.UserID][alice.DeviceID]
			if len(keys) != 1 {
				t.Fatalf("claim %d: %s", i, c.Raw)
			}
			for id := range keys {
				if i < 5 && claimed[id] || i >= 5 && id != "signed_curve25519:FB" {
					t.Fatalf("claim %d got %s (claimed %v)", i, id, claimed)
				}
				claimed[id] = true
			}
		}
		s := syncKeys(t, alice, "", 0)
		if s.OTKCount["signed_curve25519"] != 0 || len(s.Fallbacks) != 0 {
			t.Fatalf("alice's counts after the claims: %v %v", s.OTKCount, s.Fallbacks)
		}
		huge := map[string]string{}
		for i := range 5000 {
			huge[fmt.Sprint("D", i)] = "signed_curve25519"
		}
		bob.MustErr(413, "M_TOO_LARGE", "POST", "/_matrix/client/v3/keys/claim", map[string]any{"one_time_keys": map[string]any{alice.UserID: huge}})

		// Cross-signing: the first upload needs no password (MSC3967).
		master := newE2EDevice(t, alice)
		ssk := newE2EDevice(t, alice)
		usk := newE2EDevice(t, alice)
		csKey := func(d *e2eDevice, usage string) map[string]any {
			return map[string]any{"user_id": alice.UserID, "usage": []string{usage}, "keys": map[string]any{"ed25519:" + d.pub: d.pub}}
		}
		signed := func(obj map[string]any) map[string]any {
			return sign(t, obj, alice.UserID, "ed25519:"+master.pub, master.priv)
		}
		alice.MustErr(400, "M_INVALID_SIGNATURE", "POST", "/_matrix/client/v3/keys/device_signing/upload", map[string]any{
			"master_key": csKey(master, "master"), "self_signing_key": csKey(ssk, "self_signing"),
		})
		alice.Must(200, "POST", "/_matrix/client/v3/keys/device_signing/upload", map[string]any{
			"master_key": csKey(master, "master"), "self_signing_key": signed(csKey(ssk, "self_signing")), "user_signing_key": signed(csKey(usk, "user_signing")),
		})
		own := alice.Must(200, "POST", "/_matrix/client/v3/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}})
		bobView := bob.Must(200, "POST", "/_matrix/client/v3/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}})
		if !strings.Contains(string(own.Raw), usk.pub) || strings.Contains(string(bobView.Raw), usk.pub) || !strings.Contains(string(bobView.Raw), ssk.pub) || !strings.Contains(string(bobView.Raw), master.pub) {
			t.Fatalf("user-signing key must show to alice only:\nalice: %s\nbob: %s", own.Raw, bobView.Raw)
		}
		// Replacing the master key needs the password.
		master2 := newE2EDevice(t, alice)
		body := map[string]any{"master_key": csKey(master2, "master")}
		uia := alice.MustErr(401, "", "POST", "/_matrix/client/v3/keys/device_signing/upload", body)
		body["auth"] = map[string]any{"type": "m.login.password", "session": uia.Str("session"), "password": "password alice",
			"identifier": map[string]any{"type": "m.id.user", "user": "alice"}}
		bobTok2 := syncKeys(t, bob, "", 0).NextBatch
		alice.Must(200, "POST", "/_matrix/client/v3/keys/device_signing/upload", body)
		syncUntil(t, bob, bobTok2, func(s keysSync) bool { return slices.Contains(s.DeviceLists.Changed, alice.UserID) })
		// Put the first master back (with the password again) for the
		// signature tests.
		body = map[string]any{"master_key": csKey(master, "master")}
		uia = alice.MustErr(401, "", "POST", "/_matrix/client/v3/keys/device_signing/upload", body)
		body["auth"] = map[string]any{"type": "m.login.password", "session": uia.Str("session"), "password": "password alice",
			"identifier": map[string]any{"type": "m.id.user", "user": "alice"}}
		alice.Must(200, "POST", "/_matrix/client/v3/keys/device_signing/upload", body)

		// alice's self-signing key signs her device; a bad signature and an
		// unknown key fail one by one.
		good := sign(t, ad.deviceKeys(t), alice.UserID, "ed25519:"+ssk.pub, ssk.priv)
		res := alice.Must(200, "POST", "/_matrix/client/v3/keys/signatures/upload", map[string]any{alice.UserID: map[string]any{alice.DeviceID: good}})
		if f, _ := res.Body["failures"].(map[string]any); len(f) != 0 {
			t.Fatalf("good signature failed: %s", res.Raw)
		}
		bad := sign(t, ad.deviceKeys(t), alice.UserID, "ed25519:"+ssk.pub, master.priv)
		res = alice.Must(200, "POST", "/_matrix/client/v3/keys/signatures/upload", map[string]any{alice.UserID: map[string]any{alice.DeviceID: bad, "NOSUCHDEVICE": good}})
		var fr struct {
			Failures map[string]map[string]struct {
				Errcode string `json:"errcode"`
			} `json:"failures"`
		}
		_ = json.Unmarshal(res.Raw, &fr)
		if fr.Failures[alice.UserID][alice.DeviceID].Errcode != "M_INVALID_SIGNATURE" || fr.Failures[alice.UserID]["NOSUCHDEVICE"].Errcode == "" {
			t.Fatalf("failures: %s", res.Raw)
		}
		q = bob.Must(200, "POST", "/_matrix/client/v3/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{alice.DeviceID}}})
		wantSig := good["signatures"].(map[string]any)[alice.UserID].(map[string]any)["ed25519:"+ssk.pub].(string)
		if !strings.Contains(string(q.Raw), wantSig) {
			t.Fatalf("bob does not see the self-signing signature: %s", q.Raw)
		}
		// bob's user-signing key signs alice's master key: only bob sees it.
		bm, bu := newE2EDevice(t, bob), newE2EDevice(t, bob)
		bobKey := func(d *e2eDevice, usage string) map[string]any {
			return map[string]any{"user_id": bob.UserID, "usage": []string{usage}, "keys": map[string]any{"ed25519:" + d.pub: d.pub}}
		}
		bob.Must(200, "POST", "/_matrix/client/v3/keys/device_signing/upload", map[string]any{
			"master_key": bobKey(bm, "master"), "user_signing_key": sign(t, bobKey(bu, "user_signing"), bob.UserID, "ed25519:"+bm.pub, bm.priv),
		})
		aliceMaster := sign(t, csKey(master, "master"), bob.UserID, "ed25519:"+bu.pub, bu.priv)
		res = bob.Must(200, "POST", "/_matrix/client/v3/keys/signatures/upload", map[string]any{alice.UserID: map[string]any{master.pub: aliceMaster}})
		if f, _ := res.Body["failures"].(map[string]any); len(f) != 0 {
			t.Fatalf("bob's signature of alice's master failed: %s", res.Raw)
		}
		uskSig := aliceMaster["signatures"].(map[string]any)[bob.UserID].(map[string]any)["ed25519:"+bu.pub].(string)
		if q := bob.Must(200, "POST", "/_matrix/client/v3/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}}); !strings.Contains(string(q.Raw), uskSig) {
			t.Fatalf("bob does not see his signature of alice's master key: %s", q.Raw)
		}
		if q := eve.Must(200, "POST", "/_matrix/client/v3/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}}); strings.Contains(string(q.Raw), uskSig) {
			t.Fatalf("eve sees bob's user-signing signature: %s", q.Raw)
		}

		// alice logs in a second device, then logs it out: bob hears of
		// both changes, and the keys are gone.
		alice2 := mxtest.Login(t, srv.URL, "alice", "password alice")
		a2 := newE2EDevice(t, alice2)
		alice2.Must(200, "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": a2.deviceKeys(t), "one_time_keys": a2.otks(t, "B", 2)})
		tok := syncKeys(t, bob, "", 0).NextBatch
		alice2.Must(200, "POST", "/_matrix/client/v3/logout", map[string]any{})
		syncUntil(t, bob, tok, func(s keysSync) bool { return slices.Contains(s.DeviceLists.Changed, alice.UserID) })
		q = bob.Must(200, "POST", "/_matrix/client/v3/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}})
		if strings.Contains(string(q.Raw), alice2.DeviceID) {
			t.Fatalf("logged-out device's keys still served: %s", q.Raw)
		}

		// bob leaves: alice is told he is gone from her lists.
		aliceTok := syncKeys(t, alice, "", 0).NextBatch
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		gone := syncUntil(t, alice, aliceTok, func(s keysSync) bool { return slices.Contains(s.DeviceLists.Left, bob.UserID) })
		ch := alice.Must(200, "GET", "/_matrix/client/v3/keys/changes?"+url.Values{"from": {aliceTok}, "to": {gone.NextBatch}}.Encode(), nil)
		var chr struct{ Changed, Left []string }
		_ = json.Unmarshal(ch.Raw, &chr)
		if !slices.Contains(chr.Left, bob.UserID) || slices.Contains(chr.Changed, bob.UserID) {
			t.Fatalf("/keys/changes after bob left: %s", ch.Raw)
		}
		alice.MustErr(400, "M_INVALID_PARAM", "GET", "/_matrix/client/v3/keys/changes?from=garbage&to="+gone.NextBatch, nil)
		alice.MustErr(400, "M_MISSING_PARAM", "GET", "/_matrix/client/v3/keys/changes?from="+aliceTok, nil)
		// A new room-mate shows up in changed when he joins.
		aliceTok = syncKeys(t, alice, "", 0).NextBatch
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": eve.UserID})
		eve.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", room), map[string]any{})
		syncUntil(t, alice, aliceTok, func(s keysSync) bool { return slices.Contains(s.DeviceLists.Changed, eve.UserID) })
	})
}

// waitPolling waits until the user's /sync long-poll is waiting.
func waitPolling(t *testing.T, srv *testServer, userID string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !srv.srv.hs.Notifier.Waiting(userID) {
		if time.Now().After(deadline) {
			t.Fatalf("%s's long-poll never waited", userID)
		}
		time.Sleep(time.Millisecond)
	}
}
