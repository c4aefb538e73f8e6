package main

import (
	"encoding/json"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestEncryptionByDefault: with encryption.default private, private chats
// and direct chats start encrypted, public rooms and spaces do not, a
// creator's own m.room.encryption wins ("private" is the default, see
// homeserver.EncryptionConfig); "all" and "off" do what they say; an encrypted message in a
// DM notifies (push rules see only its type).
func TestEncryptionByDefault(t *testing.T) {
	state := func(c *mxtest.Client, room string) (int, string) {
		r := c.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.encryption/", room), nil)
		return r.Status, string(r.Raw)
	}
	create := func(c *mxtest.Client, body map[string]any) string {
		return c.Must(200, "POST", "/_matrix/client/v3/createRoom", body).Str("room_id")
	}
	if d := Defaults().Encryption.Default; d != "private" {
		t.Fatalf("encryption.default defaults to %q", d)
	}
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db, func(c *Config) { c.Encryption.Default = "private" })
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		for name, tc := range map[string]struct {
			body map[string]any
			want string // "" for not encrypted
		}{
			"private_chat":         {map[string]any{"preset": "private_chat"}, `{"algorithm":"m.megolm.v1.aes-sha2"}`},
			"default private":      {map[string]any{}, `{"algorithm":"m.megolm.v1.aes-sha2"}`},
			"trusted_private_chat": {map[string]any{"preset": "trusted_private_chat", "is_direct": true, "invite": []string{bob.UserID}}, `{"algorithm":"m.megolm.v1.aes-sha2"}`},
			"public direct":        {map[string]any{"preset": "public_chat", "is_direct": true}, `{"algorithm":"m.megolm.v1.aes-sha2"}`},
			"public_chat":          {map[string]any{"preset": "public_chat"}, ""},
			"space":                {map[string]any{"preset": "private_chat", "creation_content": map[string]any{"type": "m.space"}}, ""},
			"creator's own": {map[string]any{"preset": "private_chat", "initial_state": []map[string]any{{"type": "m.room.encryption", "state_key": "",
				"content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "rotation_period_ms": 3600000}}}}, `{"algorithm":"m.megolm.v1.aes-sha2","rotation_period_ms":3600000}`},
		} {
			room := create(alice, tc.body)
			status, raw := state(alice, room)
			switch {
			case tc.want == "" && status != 404:
				t.Errorf("%s: encrypted: %d %s", name, status, raw)
			case tc.want != "" && (status != 200 || !jsonEqual(raw, tc.want)):
				t.Errorf("%s: got %d %s, want %s", name, status, raw, tc.want)
			}
		}

		// An encrypted message in a DM notifies bob.
		dm := create(alice, map[string]any{"preset": "trusted_private_chat", "is_direct": true, "invite": []string{bob.UserID}})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", dm), map[string]any{})
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.encrypted/e1", dm), map[string]any{
			"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg", "sender_key": "k", "device_id": "D", "session_id": "s"})
		r := bob.Must(200, "GET", "/_matrix/client/v3/sync", nil)
		var s struct {
			Rooms struct {
				Join map[string]struct {
					Unread struct {
						N int `json:"notification_count"`
						H int `json:"highlight_count"`
					} `json:"unread_notifications"`
				} `json:"join"`
			} `json:"rooms"`
		}
		_ = json.Unmarshal(r.Raw, &s)
		if u := s.Rooms.Join[dm].Unread; u.N != 1 || u.H != 0 {
			t.Fatalf("bob's unread counts for an encrypted DM message: %+v", u)
		}
	})
	t.Run("all and off", func(t *testing.T) {
		for mode, want := range map[string]int{"all": 200, "off": 404} {
			srv := startServer(t, "sqlite:"+t.TempDir()+"/salon.db", func(c *Config) { c.Encryption.Default = mode })
			alice := mxtest.Register(t, srv.URL, "alice", "password alice")
			for _, preset := range []string{"public_chat", "private_chat"} {
				room := create(alice, map[string]any{"preset": preset})
				if status, raw := state(alice, room); (mode == "all" || preset == "private_chat") && status != want || mode == "off" && status != 404 {
					t.Errorf("encryption.default %s, %s: %d %s", mode, preset, status, raw)
				}
			}
		}
	})
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
