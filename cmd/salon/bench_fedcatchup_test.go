package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/homeserver/rooms"
)

// BenchmarkFederationCatchUp: A and B share a room; B is stopped; Alice's
// messages (catchUpEvents of them, sent in process on A, each queued to
// b.test) pile up in A's queue; B restarts, and the benchmark measures the
// time until Bob's /messages on B shows the last one: A's queue noticing
// B is back (its backoff, ended by B's first call to A or its own retry),
// 200 transactions of 50 PDUs, B's checks and commits. Reported as
// s/catchup (wall time per catch-up) and events/s.
func BenchmarkFederationCatchUp(b *testing.B) {
	const catchUpEvents = 10000
	for name, db := range backends(b) {
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				n := fedNodes(b, db(b), "a.test", "b.test")
				na, nb := n[0], n[1]
				noLimit := func(c *Config) { c.RateLimits.MessagesPerUser.PerSecond = 0 }
				sa, sb := na.start(b, noLimit), nb.start(b, noLimit)
				alice := mxtest.Register(b, sa.URL, "alice", "password alice")
				bob := mxtest.Register(b, sb.URL, "bob", "password bob")
				room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
				bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room)+"?server_name=a.test", map[string]any{})
				sb.Stop()
				sendStart := time.Now()
				first, last := "", ""
				for j := range catchUpEvents {
					id, err := sa.srv.hs.Rooms.Send(context.Background(), room, alice.UserID, rooms.Event{
						Type: "m.room.message", Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":"catch-up %d"}`, j)),
					})
					if err != nil {
						b.Fatal(err)
					}
					if first == "" {
						first = id
					}
					last = id
				}
				b.Logf("%s: %d events sent on A in %v", name, catchUpEvents, time.Since(sendStart).Round(time.Millisecond))

				b.StartTimer()
				start := time.Now()
				sb = nb.start(b, noLimit)
				bob = mxtest.Login(b, sb.URL, "bob", "password bob")
				deadline := time.Now().Add(30 * time.Minute)
				var firstAt time.Duration
				for {
					if firstAt == 0 && bob.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", room, first), nil).Status == 200 {
						firstAt = time.Since(start)
					}
					r := bob.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", room, last), nil)
					if r.Status == 200 {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("B has not caught up in 30 min: %d %s", r.Status, r.Raw)
					}
					time.Sleep(50 * time.Millisecond)
				}
				d := time.Since(start)
				b.StopTimer()
				total += d
				b.Logf("%s: B caught up %d events in %v (the first after %v)", name, catchUpEvents, d.Round(time.Millisecond), firstAt.Round(time.Millisecond))
				sa.Stop()
				sb.Stop()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/catchup")
			b.ReportMetric(float64(catchUpEvents*b.N)/total.Seconds(), "events/s")
		})
	}
}
