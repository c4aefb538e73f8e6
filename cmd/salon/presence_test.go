package main

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

type presenceSyncResp struct {
	NextBatch string `json:"next_batch"`
	Presence  struct {
		Events []struct {
			Type    string         `json:"type"`
			Sender  string         `json:"sender"`
			Content map[string]any `json:"content"`
		} `json:"events"`
	} `json:"presence"`
}

// presenceSync runs GET /sync with the given parameters (since, timeout,
// set_presence, filter) and returns next_batch and the m.presence content
// by sender.
func presenceSync(t *testing.T, c *mxtest.Client, q url.Values) (string, map[string]map[string]any) {
	t.Helper()
	r := c.Must(200, "GET", "/_matrix/client/v3/sync?"+q.Encode(), nil)
	var s presenceSyncResp
	if err := json.Unmarshal(r.Raw, &s); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, e := range s.Presence.Events {
		if e.Type != "m.presence" {
			t.Fatalf("presence section holds %s: %s", e.Type, r.Raw)
		}
		out[e.Sender] = e.Content
	}
	return s.NextBatch, out
}

// TestPresenceOverHTTP: alice and bob share a room, eve does not. Presence
// reaches the room-mates (waking their long-polls) and never eve.
func TestPresenceOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		eve := mxtest.Register(t, srv.URL, "eve", "password eve")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{bob.UserID}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", room), map[string]any{})
		eve.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "ailleurs"})

		// bob's first sync marks him online; alice was not seen yet.
		bobTok, got := presenceSync(t, bob, url.Values{})
		if got[bob.UserID]["presence"] != "online" || got[alice.UserID] != nil {
			t.Fatalf("bob's initial presence: %v", got)
		}
		eveTok, _ := presenceSync(t, eve, url.Values{})

		// bob waits; alice says she is online: bob's poll wakes with it.
		type result struct {
			tok string
			got map[string]map[string]any
			at  time.Time
		}
		done := make(chan result, 1)
		go func() {
			tok, got := presenceSync(t, bob, url.Values{"since": {bobTok}, "timeout": {"30000"}})
			done <- result{tok, got, time.Now()}
		}()
		notifier := srv.srv.hs.Notifier
		deadline := time.Now().Add(5 * time.Second)
		for !notifier.Waiting(bob.UserID) {
			if time.Now().After(deadline) {
				t.Fatal("bob's long-poll never waited")
			}
			time.Sleep(time.Millisecond)
		}
		put := time.Now()
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), map[string]any{"presence": "online", "status_msg": "en TD"})
		res := <-done
		t.Logf("bob's long-poll answered %v after alice's PUT began", res.at.Sub(put))
		if res.at.Sub(put) > 2*time.Second {
			t.Fatalf("bob's long-poll took %v", res.at.Sub(put))
		}
		a := res.got[alice.UserID]
		if a["presence"] != "online" || a["status_msg"] != "en TD" || a["currently_active"] != true || a["last_active_ago"] == nil {
			t.Fatalf("alice's presence in bob's sync: %v", res.got)
		}
		bobTok = res.tok

		// eve sees none of it, initial or incremental, and may not ask.
		for _, q := range []url.Values{{}, {"since": {eveTok}}} {
			if _, got := presenceSync(t, eve, q); got[alice.UserID] != nil || got[bob.UserID] != nil {
				t.Fatalf("eve's sync (%v) has her non-room-mates' presence: %v", q, got)
			}
		}
		eve.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), nil)

		// alice's own sync carries her presence; set_presence=unavailable
		// on it shows as unavailable to bob.
		_, got = presenceSync(t, alice, url.Values{"set_presence": {"unavailable"}})
		if got[alice.UserID]["presence"] != "unavailable" || got[bob.UserID]["presence"] != "online" {
			t.Fatalf("alice's sync: %v", got)
		}
		bobTok, got = presenceSync(t, bob, url.Values{"since": {bobTok}, "timeout": {"30000"}})
		if got[alice.UserID]["presence"] != "unavailable" || got[alice.UserID]["currently_active"] != false {
			t.Fatalf("bob after alice's set_presence=unavailable: %v", got)
		}
		if r := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), nil); r.Str("presence") != "unavailable" || r.Str("status_msg") != "en TD" {
			t.Fatalf("GET alice's presence: %s", r.Raw)
		}

		// A filter with presence types [] removes the section (Element's
		// filter when presence is off), inline or stored.
		off := `{"presence":{"types":[]}}`
		if _, got := presenceSync(t, bob, url.Values{"filter": {off}}); len(got) != 0 {
			t.Fatalf("presence with types []: %v", got)
		}
		fid := bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/user/%s/filter", bob.UserID), json.RawMessage(off)).Str("filter_id")
		if _, got := presenceSync(t, bob, url.Values{"filter": {fid}}); len(got) != 0 {
			t.Fatalf("presence with a stored types [] filter: %v", got)
		}
		if _, got := presenceSync(t, bob, url.Values{"filter": {`{"presence":{"not_types":["m.presence"]}}`}}); len(got) != 0 {
			t.Fatalf("presence with not_types: %v", got)
		}
		bob.MustErr(400, "M_INVALID_PARAM", "GET", "/_matrix/client/v3/sync?set_presence=away", nil)

		// After a restart presence is forgotten: bob's old token still
		// works and tells him alice is offline now.
		srv.Stop()
		srv2 := startServer(t, db)
		for _, c := range []*mxtest.Client{alice, bob} {
			c.Base = srv2.URL
		}
		_, got = presenceSync(t, bob, url.Values{"since": {bobTok}, "timeout": {"30000"}})
		if got[alice.UserID]["presence"] != "offline" || got[bob.UserID]["presence"] != "online" {
			t.Fatalf("bob's sync with a token from before the restart: %v", got)
		}
		if r := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), nil); r.Str("presence") != "offline" {
			t.Fatalf("GET after the restart: %s", r.Raw)
		}
	})
}

// TestPresenceDisabled: with presence.enabled false, /sync has no presence,
// PUT is accepted and ignored, GET answers offline.
func TestPresenceDisabled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db, func(c *Config) { c.Presence.Enabled = false })
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{bob.UserID}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", room), map[string]any{})
		tok, got := presenceSync(t, bob, url.Values{})
		if len(got) != 0 {
			t.Fatalf("presence while disabled: %v", got)
		}
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), map[string]any{"presence": "online", "status_msg": "là"})
		if _, got := presenceSync(t, bob, url.Values{"since": {tok}}); len(got) != 0 {
			t.Fatalf("presence while disabled: %v", got)
		}
		if _, got := presenceSync(t, alice, url.Values{}); len(got) != 0 {
			t.Fatalf("presence while disabled: %v", got)
		}
		r := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), nil)
		if r.Str("presence") != "offline" || r.Str("status_msg") != "" {
			t.Fatalf("GET while disabled: %s", r.Raw)
		}
		// Bad input is still refused.
		alice.MustErr(400, "M_INVALID_PARAM", "PUT", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), map[string]any{"presence": "away"})
	})
}

// TestPresenceAfterLeaving: someone who leaves the only room they shared
// with a user can no longer ask for that user's presence.
func TestPresenceAfterLeaving(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		eve := mxtest.Register(t, srv.URL, "eve", "password eve")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		status := mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID)
		alice.Must(200, "PUT", status, map[string]any{"presence": "online"})
		eve.MustErr(403, "M_FORBIDDEN", "GET", status, nil)
		eve.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		eve.Must(200, "GET", status, nil)
		eve.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		eve.MustErr(403, "M_FORBIDDEN", "GET", status, nil)
	})
}
