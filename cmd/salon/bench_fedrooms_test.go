package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// BenchmarkFederationRoomMessage: the time from Alice's send on A to the
// message in Bob's long-polling /sync on B, in a room both are in: A's
// commit, the PDU queued and sent, B's checks (pducheck, the keyring's
// cached key) and commit, B's notifier. One message in flight at a time.
func BenchmarkFederationRoomMessage(b *testing.B) {
	for name, db := range backends(b) {
		b.Run(name, func(b *testing.B) {
			n := fedNodes(b, db(b), "a.test", "b.test")
			na, nb := n[0], n[1]
			noLimit := func(c *Config) { c.RateLimits.MessagesPerUser.PerSecond = 0 }
			sa, sb := na.start(b, noLimit), nb.start(b, noLimit)
			alice := mxtest.Register(b, sa.URL, "alice", "password alice")
			bob := mxtest.Register(b, sb.URL, "bob", "password bob")
			room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room)+"?server_name=a.test", map[string]any{})
			hc := &http.Client{Timeout: time.Minute}
			since, _, err := roomSyncOnce(hc, sb.URL, bob.Token, "", 0, room, "")
			if err != nil {
				b.Fatal(err)
			}
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				marker := fmt.Sprint("msg-", i)
				got := make(chan error, 1)
				go func() {
					for {
						next, found, err := roomSyncOnce(hc, sb.URL, bob.Token, since, 30*time.Second, room, marker)
						if err != nil {
							got <- err
							return
						}
						since = next
						if found {
							got <- nil
							return
						}
					}
				}()
				waitPollingB(b, sb, bob.UserID)
				start := time.Now()
				alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, marker), map[string]any{"msgtype": "m.text", "body": marker})
				if err := <-got; err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			reportLatencies(b, name, lat)
		})
	}
}

// roomSyncOnce runs one /sync and reports whether the room's timeline in
// it holds marker.
func roomSyncOnce(hc *http.Client, base, token, since string, timeout time.Duration, room, marker string) (string, bool, error) {
	s, err := syncAs[roomsSync](hc, base, token, since, timeout)
	if err != nil {
		return since, false, err
	}
	return s.NextBatch, marker != "" && strings.Contains(string(s.Rooms.Join[room]), `"`+marker+`"`), nil
}
