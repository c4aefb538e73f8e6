package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// backupBatch is one PUT /room_keys/keys body of n sessions over 10 rooms,
// each the size a real client uploads (a megolm session export encrypted
// for the backup: ~700 base64 characters of ciphertext).
func backupBatch(n int, tag string) string {
	ct := strings.Repeat("Q", 700)
	var sb strings.Builder
	sb.WriteString(`{"rooms":{`)
	for r := range 10 {
		if r > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"!room%d:bench":{"sessions":{`, r)
		for i := r; i < n; i += 10 {
			if i > r {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `"%s%06dAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA":{"first_message_index":%d,"forwarded_count":0,"is_verified":true,`+
				`"session_data":{"ephemeral":"dGhpcyBpcyBhbiBlcGhlbWVyYWwga2V5IGJhc2U2NA","ciphertext":"%s","mac":"bWFjbWFjbWFj"}}`,
				tag, i, i%7, ct)
		}
		sb.WriteString(`}}`)
	}
	sb.WriteString(`}}`)
	return sb.String()
}

func backupRequest(b *testing.B, hc *http.Client, c *mxtest.Client, method, url, body string) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.Token)
	res, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b.Fatalf("%s %s: %d", method, url, res.StatusCode)
	}
	var sink [32 << 10]byte
	for {
		if _, err := res.Body.Read(sink[:]); err != nil {
			break
		}
	}
}

// BenchmarkKeyBackupPut1000: one PUT /room_keys/keys of 1,000 new sessions
// (about 0.85 MB of JSON), into a backup that grows by 1,000 keys per op.
func BenchmarkKeyBackupPut1000(b *testing.B) {
	benchBackends(b, func(b *testing.B, srv *testServer) {
		c := mxtest.Register(b, srv.URL, "bench", "bench password")
		v := c.Must(200, "POST", "/_matrix/client/v3/room_keys/version", map[string]any{"algorithm": backupAlg, "auth_data": map[string]any{"public_key": "x"}}).Str("version")
		bodies := make([]string, b.N)
		for i := range bodies {
			bodies[i] = backupBatch(1000, fmt.Sprintf("b%d", i))
		}
		hc := &http.Client{}
		url := srv.URL + "/_matrix/client/v3/room_keys/keys?version=" + v
		b.SetBytes(int64(len(bodies[0])))
		b.ResetTimer()
		for i := range b.N {
			backupRequest(b, hc, c, "PUT", url, bodies[i])
		}
	})
}

// BenchmarkKeyBackupGetAll: GET /room_keys/keys of a backup holding 1,000
// sessions.
func BenchmarkKeyBackupGetAll(b *testing.B) {
	benchBackends(b, func(b *testing.B, srv *testServer) {
		c := mxtest.Register(b, srv.URL, "bench", "bench password")
		v := c.Must(200, "POST", "/_matrix/client/v3/room_keys/version", map[string]any{"algorithm": backupAlg, "auth_data": map[string]any{"public_key": "x"}}).Str("version")
		hc := &http.Client{}
		url := srv.URL + "/_matrix/client/v3/room_keys/keys?version=" + v
		backupRequest(b, hc, c, "PUT", url, backupBatch(1000, "g"))
		if n := c.Must(200, "GET", "/_matrix/client/v3/room_keys/version/"+v, nil).Body["count"]; n != 1000.0 {
			b.Fatalf("count = %v", n)
		}
		b.ResetTimer()
		for range b.N {
			backupRequest(b, hc, c, "GET", url, "")
		}
	})
}
