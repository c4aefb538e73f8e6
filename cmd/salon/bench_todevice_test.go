package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// toDeviceSync is what the delivery benchmark reads of a /sync answer.
type toDeviceSync struct {
	NextBatch string `json:"next_batch"`
	ToDevice  struct {
		Events []json.RawMessage `json:"events"`
	} `json:"to_device"`
}

func syncOnce(hc *http.Client, base, token, since string, timeout time.Duration) (toDeviceSync, error) {
	return syncAs[toDeviceSync](hc, base, token, since, timeout)
}

// syncAs runs one /sync (long-polling up to timeout) and decodes the
// answer into a T, the parts a benchmark reads.
func syncAs[T any](hc *http.Client, base, token, since string, timeout time.Duration) (T, error) {
	var s T
	u := base + "/_matrix/client/v3/sync?timeout=" + fmt.Sprint(timeout.Milliseconds())
	if since != "" {
		u += "&since=" + url.QueryEscape(since)
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		return s, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return s, fmt.Errorf("sync: %d", res.StatusCode)
	}
	return s, json.NewDecoder(res.Body).Decode(&s)
}

// fanoutBody is a sendToDevice body with one 300-byte olm-shaped message
// for each DEV0..DEV{devices-1} of each user.
func fanoutBody(users []string, devices int) []byte {
	msgs := map[string]map[string]any{}
	for _, u := range users {
		msgs[u] = map[string]any{}
		for d := range devices {
			msgs[u][fmt.Sprint("DEV", d)] = map[string]any{"algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "c2VuZGVyIGtleQ",
				"ciphertext": map[string]any{"key": map[string]any{"type": 0, "body": strings.Repeat("A", 300)}}}
		}
	}
	body, _ := json.Marshal(map[string]any{"messages": msgs})
	return body
}

// BenchmarkToDeviceDelivery: 1,000 devices (250 users × 4) long-poll /sync;
// each iteration sends one to-device message to all of them (a room key
// shared with a 250-member room) and waits until every device's long-poll
// has returned it. Reports the send-to-delivery time's p50 and p99 over
// all deliveries. The seeded devices' access tokens are user ID + device ID
// (seedKeys stores the hash of that).
func BenchmarkToDeviceDelivery(b *testing.B) {
	benchBackends(b, func(b *testing.B, srv *testServer) {
		const users, devices = 250, 4
		ids := seedKeys(b, string(srv.srv.cfg.Database), "d", users, devices, 0)
		sender := mxtest.Register(b, srv.URL, "sender", "bench password")
		tr := &http.Transport{MaxIdleConnsPerHost: users*devices + 16, MaxConnsPerHost: users*devices + 16}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		type poller struct{ token, since string }
		var polls []*poller
		for _, u := range ids {
			for d := range devices {
				p := &poller{token: u + fmt.Sprint("DEV", d)}
				s, err := syncOnce(hc, srv.URL, p.token, "", 0)
				if err != nil {
					b.Fatal(err)
				}
				p.since = s.NextBatch
				polls = append(polls, p)
			}
		}
		body := fanoutBody(ids, devices)
		var mu sync.Mutex
		var lat []time.Duration
		b.ResetTimer()
		i := 0
		for b.Loop() {
			i++
			var wg sync.WaitGroup
			var sent time.Time
			ready := make(chan struct{})
			for _, p := range polls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-ready
					for {
						s, err := syncOnce(hc, srv.URL, p.token, p.since, 30*time.Second)
						if err != nil {
							b.Error(err)
							return
						}
						p.since = s.NextBatch
						if len(s.ToDevice.Events) > 0 {
							d := time.Since(sent)
							mu.Lock()
							lat = append(lat, d)
							mu.Unlock()
							return
						}
					}
				}()
			}
			close(ready)
			waitPollers(b, srv, ids)
			sent = time.Now()
			benchPost(b, hc, fmt.Sprintf("%s/_matrix/client/v3/sendToDevice/m.room.encrypted/d%d", srv.URL, i), sender.Token, "PUT", body)
			wg.Wait()
		}
		b.StopTimer()
		slices.Sort(lat)
		if len(lat) > 0 {
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		}
	})
}

// waitPollers waits until each user has a long-poll parked in the sync
// notifier (which counts users, not devices), then a moment for their
// other devices, so the send is timed from a quiet start rather than from
// connection set-up.
func waitPollers(b *testing.B, srv *testServer, users []string) {
	deadline := time.Now().Add(60 * time.Second)
	for _, u := range users {
		for !srv.srv.hs.Notifier.Waiting(u) {
			if time.Now().After(deadline) {
				b.Fatalf("%s has no long-poll waiting", u)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
}

// BenchmarkToDeviceQueuedMemory: the server's live heap with 10,000
// to-device messages queued and not yet synced (10 fan-outs to 1,000
// devices). The queue lives in the database; this checks that nothing of
// it is held in memory. Reports the heap in use after a GC, before and
// after queueing.
func BenchmarkToDeviceQueuedMemory(b *testing.B) {
	benchBackends(b, func(b *testing.B, srv *testServer) {
		const users, devices = 250, 4
		ids := seedKeys(b, string(srv.srv.cfg.Database), "m", users, devices, 0)
		sender := mxtest.Register(b, srv.URL, "sender", "bench password")
		hc := &http.Client{}
		body := fanoutBody(ids, devices)
		heap := func() float64 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return float64(m.HeapInuse) / (1 << 20)
		}
		i := 0
		for b.Loop() {
			before := heap()
			for range 10 {
				i++
				benchPost(b, hc, fmt.Sprintf("%s/_matrix/client/v3/sendToDevice/m.room.encrypted/m%d", srv.URL, i), sender.Token, "PUT", body)
			}
			b.ReportMetric(before, "heap-before-MiB")
			b.ReportMetric(heap(), "heap-10k-queued-MiB")
		}
	})
}
