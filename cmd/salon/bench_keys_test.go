package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/salonhq/salon/homeserver"
	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/homeserver/store"
)

// seedKeys stores users×devices devices with device keys (and otks
// one-time keys each) straight into the server's database, through a
// second store on it: registering and logging in 1,500 devices over HTTP
// would spend minutes in argon2id.
func seedKeys(b *testing.B, database, prefix string, users, devices, otks int) (userIDs []string) {
	b.Helper()
	ctx := context.Background()
	st, err := homeserver.OpenStore(ctx, database, b.TempDir(), "normal")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for u := range users {
		uid := fmt.Sprintf("@%s%d:localhost", prefix, u)
		userIDs = append(userIDs, uid)
		for d := range devices {
			did := fmt.Sprintf("DEV%d", d)
			h := sha256.Sum256([]byte(uid + did))
			if err := st.UpsertDevice(ctx, store.Device{UserID: uid, DeviceID: did, DisplayName: "phone", TokenHash: h[:], CreatedTS: 1}); err != nil {
				b.Fatal(err)
			}
			dk := fmt.Sprintf(`{"algorithms":["m.olm.v1.curve25519-aes-sha2","m.megolm.v1.aes-sha2"],"device_id":%q,"keys":{"curve25519:%s":"c2VlZCBjdXJ2ZSBrZXkgZm9yIGJlbmNobWFyaw","ed25519:%s":"c2VlZCBlZDI1NTE5IGtleSBmb3IgYmVuY2htYXJr"},"signatures":{%q:{"ed25519:%s":"c2lnbmF0dXJlIG9mIHRoZSBkZXZpY2Uga2V5cyBmb3IgdGhlIGJlbmNobWFyayBzZWVk"}},"user_id":%q}`,
				did, did, did, uid, did, uid)
			var keys []store.KeyJSON
			for k := range otks {
				keys = append(keys, store.KeyJSON{KeyID: fmt.Sprintf("signed_curve25519:K%04d", k), JSON: []byte(fmt.Sprintf(`{"key":"otk%d%s%s"}`, k, uid, did))})
			}
			if _, err := st.UploadKeys(ctx, uid, did, []byte(dk), keys, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	return userIDs
}

func benchPost(b *testing.B, hc *http.Client, url, token, method string, body []byte) []byte {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	if res.StatusCode != 200 {
		b.Fatalf("%s: %d %s", url, res.StatusCode, buf.Bytes())
	}
	return buf.Bytes()
}

// BenchmarkKeysQuery: one /keys/query for every device of 500 users with 3
// devices each (a client's first look at a big room's members).
func BenchmarkKeysQuery(b *testing.B) {
	benchBackends(b, func(b *testing.B, srv *testServer) {
		users := seedKeys(b, string(srv.srv.cfg.Database), "q", 500, 3, 0)
		c := mxtest.Register(b, srv.URL, "asker", "bench password")
		want := map[string][]string{}
		for _, u := range users {
			want[u] = []string{}
		}
		body, _ := json.Marshal(map[string]any{"device_keys": want})
		hc := &http.Client{}
		out := benchPost(b, hc, srv.URL+"/_matrix/client/v3/keys/query", c.Token, "POST", body)
		var r struct {
			DeviceKeys map[string]map[string]json.RawMessage `json:"device_keys"`
		}
		if json.Unmarshal(out, &r) != nil || len(r.DeviceKeys) != 500 || len(r.DeviceKeys[users[499]]) != 3 {
			b.Fatalf("query answer: %.300s", out)
		}
		b.ResetTimer()
		for b.Loop() {
			benchPost(b, hc, srv.URL+"/_matrix/client/v3/keys/query", c.Token, "POST", body)
		}
	})
}

// BenchmarkKeysClaim: one /keys/claim of a one-time key for each device of
// a 200-member room (3 devices each). Each device holds 64 keys: run with
// -benchtime of at most 64x so every claim takes a one-time key.
func BenchmarkKeysClaim(b *testing.B) {
	benchBackends(b, func(b *testing.B, srv *testServer) {
		users := seedKeys(b, string(srv.srv.cfg.Database), "c", 200, 3, 64)
		c := mxtest.Register(b, srv.URL, "claimer", "bench password")
		want := map[string]map[string]string{}
		for _, u := range users {
			want[u] = map[string]string{"DEV0": "signed_curve25519", "DEV1": "signed_curve25519", "DEV2": "signed_curve25519"}
		}
		body, _ := json.Marshal(map[string]any{"one_time_keys": want})
		hc := &http.Client{}
		b.ResetTimer()
		for b.Loop() {
			out := benchPost(b, hc, srv.URL+"/_matrix/client/v3/keys/claim", c.Token, "POST", body)
			if !bytes.Contains(out, []byte(`signed_curve25519:K`)) {
				b.Fatalf("claim answer: %.300s", out)
			}
		}
	})
}

// BenchmarkToDeviceFanout: one sendToDevice to 1,000 devices (250 users
// with 4 devices each), as a client sharing a room key does. The queues
// hold 1,000 messages per device: run with -benchtime of at most 1000x.
func BenchmarkToDeviceFanout(b *testing.B) {
	benchBackends(b, func(b *testing.B, srv *testServer) {
		users := seedKeys(b, string(srv.srv.cfg.Database), "t", 250, 4, 0)
		c := mxtest.Register(b, srv.URL, "sender", "bench password")
		msgs := map[string]map[string]any{}
		for _, u := range users {
			msgs[u] = map[string]any{}
			for d := range 4 {
				msgs[u][fmt.Sprint("DEV", d)] = map[string]any{"algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "c2VuZGVyIGtleQ",
					"ciphertext": map[string]any{"key": map[string]any{"type": 0, "body": string(bytes.Repeat([]byte("A"), 300))}}}
			}
		}
		body, _ := json.Marshal(map[string]any{"messages": msgs})
		hc := &http.Client{}
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		i := 0
		for b.Loop() {
			i++
			benchPost(b, hc, fmt.Sprintf("%s/_matrix/client/v3/sendToDevice/m.room.encrypted/b%d", srv.URL, i), c.Token, "PUT", body)
		}
	})
}
