package main

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/homeserver/rooms"
)

func noProfile(context.Context, string) (string, string) { return "", "" }

// BenchmarkHierarchy: a space of 1,000 rooms in three levels (10 sub-spaces
// of 10 sub-sub-spaces of ~10 rooms). Reports the time to the first page
// (limit 50) and to walk every page, over HTTP.
func BenchmarkHierarchy(b *testing.B) {
	srv := startServer(b, backends(b)["sqlite"](b), func(c *Config) { c.RateLimits.MessagesPerUser.PerSecond = 0 })
	owner := mxtest.Register(b, srv.URL, "owner", "password owner")
	rs := srv.srv.hs.Rooms
	ctx := context.Background()
	mk := func(space bool) string {
		req := rooms.CreateRequest{Preset: "public_chat"}
		if space {
			req.CreationContent = []byte(`{"type":"m.space"}`)
		}
		id, _, err := rs.Create(ctx, owner.UserID, req, noProfile)
		if err != nil {
			b.Fatal(err)
		}
		return id
	}
	link := func(parent, child string) {
		if _, err := rs.Send(ctx, parent, owner.UserID, rooms.Event{Type: "m.space.child", StateKey: &child, Content: []byte(`{"via":["localhost"]}`)}); err != nil {
			b.Fatal(err)
		}
	}
	root := mk(true)
	total := 0
	for i := 0; i < 10; i++ {
		l1 := mk(true)
		link(root, l1)
		for j := 0; j < 10; j++ {
			l2 := mk(true)
			link(l1, l2)
			for k := 0; k < 8; k++ {
				link(l2, mk(false))
				total++
			}
		}
	}
	total += 1 + 10 + 100
	b.ResetTimer()
	var first, all time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		next, n := "", 0
		for page := 0; ; page++ {
			p := mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy?limit=50", root)
			if next != "" {
				p += "&from=" + url.QueryEscape(next)
			}
			r := owner.Must(200, "GET", p, nil)
			if page == 0 {
				first += time.Since(t0)
			}
			n += len(r.Body["rooms"].([]any))
			next = r.Str("next_batch")
			if next == "" {
				break
			}
		}
		all += time.Since(t0)
		if n != total {
			b.Fatalf("walked %d rooms, want %d", n, total)
		}
	}
	b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "ms/first-page")
	b.ReportMetric(float64(all.Milliseconds())/float64(b.N), "ms/all-pages")
	b.ReportMetric(float64(total), "rooms")
}

// BenchmarkRestrictedJoin: a member of a 5,000-member space joins a room
// restricted to the space, over HTTP.
func BenchmarkRestrictedJoin(b *testing.B) {
	srv := startServer(b, backends(b)["sqlite"](b), func(c *Config) { c.RateLimits.MessagesPerUser.PerSecond = 0 })
	owner := mxtest.Register(b, srv.URL, "owner", "password owner")
	rs := srv.srv.hs.Rooms
	ctx := context.Background()
	space, _, err := rs.Create(ctx, owner.UserID, rooms.CreateRequest{Preset: "public_chat", CreationContent: []byte(`{"type":"m.space"}`)}, noProfile)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 5000; i++ {
		if _, err := rs.Join(ctx, space, fmt.Sprintf("@member%d:localhost", i), "", nil); err != nil {
			b.Fatal(err)
		}
	}
	joiner := mxtest.Register(b, srv.URL, "joiner", "password joiner")
	joiner.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", space), map[string]any{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		room, _, err := rs.Create(ctx, owner.UserID, rooms.CreateRequest{Preset: "private_chat", InitialState: []rooms.StateEvent{{
			Type: "m.room.join_rules", Content: []byte(`{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"` + space + `"}]}`)}}}, noProfile)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		joiner.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	}
}
