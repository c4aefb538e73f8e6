package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// benchBackends runs a benchmark per storage backend over real HTTP to a
// server wired as `salon serve` wires it.
func benchBackends(b *testing.B, fn func(b *testing.B, srv *testServer)) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			srv := startServer(b, backends(b)[name](b))
			fn(b, srv)
		})
	}
}

func BenchmarkWhoami(b *testing.B) {
	benchBackends(b, func(b *testing.B, srv *testServer) {
		c := mxtest.Register(b, srv.URL, "bench", "bench password")
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		b.SetParallelism(8)
		b.ResetTimer()
		start := time.Now()
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", srv.URL+"/_matrix/client/v3/account/whoami", nil)
				req.Header.Set("Authorization", "Bearer "+c.Token)
				res, err := hc.Do(req)
				if err != nil || res.StatusCode != 200 {
					b.Errorf("whoami: %v %v", err, res)
					return
				}
				res.Body.Close()
				n.Add(1)
			}
		})
		b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "req/s")
	})
}

func BenchmarkLogin(b *testing.B) {
	benchBackends(b, func(b *testing.B, srv *testServer) {
		mxtest.Register(b, srv.URL, "bench", "bench password")
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		body := `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"bench"},"password":"bench password","device_id":"%d"}`
		var seq atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := hc.Post(srv.URL+"/_matrix/client/v3/login", "application/json",
					strings.NewReader(fmt.Sprintf(body, seq.Add(1)%16)))
				if err != nil || res.StatusCode != 200 {
					b.Errorf("login: %v %v", err, res)
					return
				}
				res.Body.Close()
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	})
}
