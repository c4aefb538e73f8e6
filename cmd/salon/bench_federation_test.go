package main

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// BenchmarkFederationToDevice: the time from a to-device send by a user on
// Salon A to the message in the long-polling /sync of a device on Salon B
// (queue, transaction over TLS, X-Matrix check, B's to-device queue, B's
// notifier). One message in flight at a time; reports the median and p99.
//
//	go test ./cmd/salon/ -run '^$' -bench BenchmarkFederationToDevice -benchtime 200x
func BenchmarkFederationToDevice(b *testing.B) {
	for name, db := range backends(b) {
		b.Run(name, func(b *testing.B) {
			n := fedNodes(b, db(b), "a.test", "b.test")
			na, nb := n[0], n[1]
			sa, sb := na.start(b), nb.start(b)
			alice := mxtest.Register(b, sa.URL, "alice", "password alice")
			bob := mxtest.Register(b, sb.URL, "bob", "password bob")
			hc := &http.Client{Timeout: time.Minute}
			s, err := syncOnce(hc, sb.URL, bob.Token, "", 0)
			if err != nil {
				b.Fatal(err)
			}
			since := s.NextBatch
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got := make(chan error, 1)
				go func() {
					for {
						s, err := syncOnce(hc, sb.URL, bob.Token, since, 30*time.Second)
						if err != nil {
							got <- err
							return
						}
						since = s.NextBatch
						if len(s.ToDevice.Events) > 0 {
							got <- nil
							return
						}
					}
				}()
				waitPollingB(b, sb, bob.UserID)
				start := time.Now()
				alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/sendToDevice/m.test/%s", fmt.Sprint("b", i)),
					map[string]any{"messages": map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"i": i}}}})
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

// reportLatencies sorts lat and reports its median and p99 (ms), and logs
// them with the count and the maximum.
func reportLatencies(b *testing.B, name string, lat []time.Duration) {
	b.Helper()
	slices.Sort(lat)
	med, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.Logf("%s: n=%d median %v p99 %v max %v", name, len(lat), med, p99, lat[len(lat)-1])
}

// waitPollingB waits until the user's long-poll waits on the notifier.
func waitPollingB(b *testing.B, srv *testServer, userID string) {
	deadline := time.Now().Add(10 * time.Second)
	for !srv.srv.hs.Notifier.Waiting(userID) {
		if time.Now().After(deadline) {
			b.Fatalf("%s's long-poll never waited", userID)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
