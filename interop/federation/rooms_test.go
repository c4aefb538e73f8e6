package federation_test

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// roomTests share rooms between Salon and Dendrite: joins both ways (by
// alias and after an invite) and messages both ways.
func (p *pair) roomTests(t *testing.T, alice, bob *mxtest.Client) {
	run := func(name string, f func(t *testing.T, alice, bob *mxtest.Client)) {
		t.Run(name, func(t *testing.T) { f(t, as(t, alice), as(t, bob)) })
	}
	run("SalonJoinsDendriteRoomByAlias", func(t *testing.T, alice, bob *mxtest.Client) {
		joinByAlias(t, bob, alice, "djoin", p.Dendrite.Name)
	})
	run("DendriteInvitesSalonUser", func(t *testing.T, alice, bob *mxtest.Client) {
		inviteAndJoin(t, bob, alice)
	})
	run("DendriteJoinsSalonRoomByAlias", func(t *testing.T, alice, bob *mxtest.Client) {
		joinByAlias(t, alice, bob, "sjoin", p.Salon.Name)
	})
	run("SalonInvitesDendriteUser", func(t *testing.T, alice, bob *mxtest.Client) {
		inviteAndJoin(t, alice, bob)
	})
	// History from before Salon joined a Dendrite room: Salon's Alice
	// pages back past her join and reads what Bob wrote before, newest
	// first, each once (Salon asks Dendrite's /backfill).
	run("SalonBackfillsFromDendrite", func(t *testing.T, alice, bob *mxtest.Client) {
		room := bob.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "dhistory"}).Str("room_id")
		var want []string
		for i := range 12 {
			body := fmt.Sprintf("before Salon %02d", i)
			bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, fmt.Sprintf("h%d", i)), map[string]any{"msgtype": "m.text", "body": body})
			want = append([]string{body}, want...)
		}
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#dhistory:"+p.Dendrite.Name), map[string]any{})
		waitJoined(t, alice, room, alice.UserID)
		var got []string
		from := ""
		for page := 0; page < 30; page++ {
			q := "?dir=b&limit=5"
			if from != "" {
				q += "&from=" + url.QueryEscape(from)
			}
			r := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room)+q, nil)
			chunk, _ := r.Body["chunk"].([]any)
			for _, e := range chunk {
				content, _ := e.(map[string]any)["content"].(map[string]any)
				if body, _ := content["body"].(string); strings.HasPrefix(body, "before Salon") {
					got = append(got, body)
				}
			}
			if from = r.Str("end"); from == "" {
				break
			}
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("Alice's history of the Dendrite room:\n got  %q\n want %q", got, want)
		}
	})
	// A mixed room's members see each other's media and profiles: Salon's
	// Alice downloads what Dendrite's Bob uploaded (authenticated media,
	// /_matrix/client/v1/media/download, which asks Dendrite over
	// federation), Bob downloads Alice's; each looks up the other's
	// profile.
	run("MediaAndProfilesInMixedRoom", func(t *testing.T, alice, bob *mxtest.Client) {
		room := bob.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "dmedia"}).Str("room_id")
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#dmedia:"+p.Dendrite.Name), map[string]any{})
		waitJoined(t, bob, room, alice.UserID)
		download := func(who *mxtest.Client, mxc, want string) {
			t.Helper()
			server, id, ok := strings.Cut(strings.TrimPrefix(mxc, "mxc://"), "/")
			if !ok {
				t.Fatalf("content URI %q", mxc)
			}
			r := who.Do("GET", mxtest.Path("/_matrix/client/v1/media/download/%s/%s", server, id), nil)
			if r.Status != 200 || string(r.Raw) != want {
				t.Fatalf("%s downloads %s: %d %s", who.UserID, mxc, r.Status, r.Raw)
			}
		}
		bobMXC := bob.Must(200, "POST", "/_matrix/media/v3/upload?filename=bob.json", []byte(`{"from":"dendrite"}`)).Str("content_uri")
		download(alice, bobMXC, `{"from":"dendrite"}`)
		aliceMXC := alice.Must(200, "POST", "/_matrix/media/v3/upload?filename=alice.json", []byte(`{"from":"salon"}`)).Str("content_uri")
		download(bob, aliceMXC, `{"from":"salon"}`)
		// Dendrite fetched it through Salon's authenticated federation
		// media endpoint (MSC3916), not the legacy /_matrix/media/v3.
		logged, err := os.ReadFile(p.Salon.Log)
		if err != nil {
			t.Fatal(err)
		}
		fetched := false
		for _, line := range strings.Split(string(logged), "\n") {
			if strings.Contains(line, "route=/_matrix/federation/v1/media/download/") && strings.Contains(line, "status=200") &&
				strings.Contains(line, "user="+p.Dendrite.Name) {
				fetched = true
			}
		}
		if !fetched {
			t.Fatal("Salon's log has no /_matrix/federation/v1/media/download by Dendrite")
		}
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", bob.UserID), map[string]any{"displayname": "Bob of the mixed room"})
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", alice.UserID), map[string]any{"displayname": "Alice of the mixed room"})
		for _, c := range []struct {
			who  *mxtest.Client
			user string
			want string
		}{{alice, bob.UserID, "Bob of the mixed room"}, {bob, alice.UserID, "Alice of the mixed room"}} {
			eventually(t, 20*time.Second, func() string {
				r := c.who.Do("GET", mxtest.Path("/_matrix/client/v3/profile/%s", c.user), nil)
				if r.Status == 200 && r.Str("displayname") == c.want {
					return ""
				}
				return fmt.Sprintf("%s looks up %s: %d %s", c.who.UserID, c.user, r.Status, r.Raw)
			})
		}
	})
}

// joinByAlias: owner (on server) makes a public room with the alias
// #localpart:server; joiner joins it by that alias; each side lists the
// other as joined, and messages go both ways.
func joinByAlias(t *testing.T, owner, joiner *mxtest.Client, localpart, server string) {
	t.Helper()
	room := owner.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": localpart}).Str("room_id")
	r := joiner.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#"+localpart+":"+server), map[string]any{})
	if r.Str("room_id") != room {
		t.Fatalf("joined %q, the room is %s", r.Str("room_id"), room)
	}
	waitJoined(t, owner, room, joiner.UserID)
	waitJoined(t, joiner, room, owner.UserID)
	messagesBothWays(t, room, owner, joiner)
}

// inviteAndJoin: inviter makes a private room and invites invitee, who
// sees the invite in /sync and joins; the inviter's server lists the
// invitee as joined, and messages go both ways.
func inviteAndJoin(t *testing.T, inviter, invitee *mxtest.Client) {
	t.Helper()
	room := inviter.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
	inviter.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": invitee.UserID})
	waitInvite(t, invitee, room)
	invitee.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", room), map[string]any{})
	waitJoined(t, inviter, room, invitee.UserID)
	messagesBothWays(t, room, inviter, invitee)
}

// waitJoined waits until c's server lists user among room's joined members.
func waitJoined(t *testing.T, c *mxtest.Client, room, user string) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		r := c.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/joined_members", room), nil)
		joined, _ := r.Body["joined"].(map[string]any)
		if _, ok := joined[user]; !ok {
			return fmt.Sprintf("%s's server does not list %s in %s: %d %s", c.UserID, user, room, r.Status, r.Raw)
		}
		return ""
	})
}

// waitInvite waits until room is among c's invites in /sync.
func waitInvite(t *testing.T, c *mxtest.Client, room string) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		r := c.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil)
		rooms, _ := r.Body["rooms"].(map[string]any)
		invites, _ := rooms["invite"].(map[string]any)
		if _, ok := invites[room]; !ok {
			return c.UserID + " has no invite to " + room
		}
		return ""
	})
}

// messagesBothWays sends a message from each side and waits for each in
// the other side's /messages.
func messagesBothWays(t *testing.T, room string, alice, bob *mxtest.Client) {
	t.Helper()
	for _, dir := range []struct{ from, to *mxtest.Client }{{bob, alice}, {alice, bob}} {
		body := fmt.Sprintf("hello from %s at %d", dir.from.UserID, time.Now().UnixNano())
		dir.from.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, fmt.Sprint(time.Now().UnixNano())),
			map[string]any{"msgtype": "m.text", "body": body})
		eventually(t, 30*time.Second, func() string {
			r := dir.to.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room)+"?dir=b&limit=50&filter="+url.QueryEscape(`{"types":["m.room.message"]}`), nil)
			chunk, _ := r.Body["chunk"].([]any)
			for _, e := range chunk {
				m, _ := e.(map[string]any)
				content, _ := m["content"].(map[string]any)
				if content["body"] == body && m["sender"] == dir.from.UserID {
					return ""
				}
			}
			return fmt.Sprintf("%q not in %s's /messages", body, dir.to.UserID)
		})
	}
}
