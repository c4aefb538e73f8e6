package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// roomView is what a client knows of one room after applying responses.
type roomView struct {
	membership string
	lastEvent  string // newest timeline event
	joined     int
	notif      int
}

// v2Client keeps the rooms /sync has told about.
type v2Client struct {
	c     *mxtest.Client
	since string
	rooms map[string]*roomView
}

func (v *v2Client) sync(t *testing.T) {
	t.Helper()
	q := url.Values{"timeout": {"0"}}
	if v.since != "" {
		q.Set("since", v.since)
	}
	r := v.c.Must(200, "GET", "/_matrix/client/v3/sync?"+q.Encode(), nil)
	var s struct {
		NextBatch string `json:"next_batch"`
		Rooms     struct {
			Join map[string]struct {
				Summary struct {
					Joined *int `json:"m.joined_member_count"`
				} `json:"summary"`
				Timeline struct {
					Events []ev `json:"events"`
				} `json:"timeline"`
				Unread *struct {
					N int `json:"notification_count"`
				} `json:"unread_notifications"`
			} `json:"join"`
			Invite map[string]any `json:"invite"`
			Leave  map[string]struct {
				Timeline struct {
					Events []ev `json:"events"`
				} `json:"timeline"`
			} `json:"leave"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(r.Raw, &s); err != nil {
		t.Fatal(err)
	}
	v.since = s.NextBatch
	get := func(id string) *roomView {
		if v.rooms[id] == nil {
			v.rooms[id] = &roomView{}
		}
		return v.rooms[id]
	}
	for id, j := range s.Rooms.Join {
		rv := get(id)
		rv.membership = "join"
		if n := len(j.Timeline.Events); n > 0 {
			rv.lastEvent = j.Timeline.Events[n-1].EventID
		}
		if j.Summary.Joined != nil {
			rv.joined = *j.Summary.Joined
		}
		if j.Unread != nil {
			rv.notif = j.Unread.N
		}
	}
	for id := range s.Rooms.Invite {
		get(id).membership = "invite"
	}
	for id, l := range s.Rooms.Leave {
		rv := get(id)
		rv.membership = "leave"
		if n := len(l.Timeline.Events); n > 0 {
			rv.lastEvent = l.Timeline.Events[n-1].EventID
		}
	}
}

// ssClient keeps the rooms sliding sync has told about.
type ssClient struct {
	c     *mxtest.Client
	pos   string
	rooms map[string]*roomView
	count int
}

func (v *ssClient) sync(t *testing.T) {
	t.Helper()
	r := slide(t, v.c, v.pos, 0, body(map[string]any{"all": list([2]int{0, 200}, 5, [][2]string{{"m.room.name", ""}}, nil)}))
	v.pos = r.Pos
	v.count = r.Lists["all"].Count
	for id, room := range r.Rooms {
		rv := v.rooms[id]
		if rv == nil || room.Initial {
			rv = &roomView{}
			v.rooms[id] = rv
		}
		rv.membership = room.Membership
		if n := len(room.Timeline); n > 0 {
			rv.lastEvent = evs(t, room.Timeline)[n-1].EventID
		}
		if room.JoinedCount != nil {
			rv.joined = *room.JoinedCount
		}
		if room.Notifications != nil {
			rv.notif = *room.Notifications
		}
	}
}

// TestSlidingSyncMatchesSync: over random room operations by three users,
// sliding sync and /sync on bob's account agree on his joined and invited
// rooms, each joined room's newest event, member count and unread count.
func TestSlidingSyncMatchesSync(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		users := []*mxtest.Client{
			mxtest.Register(t, srv.URL, "alice", "password alice"),
			mxtest.Register(t, srv.URL, "bob", "password bob"),
			mxtest.Register(t, srv.URL, "carol", "password carol"),
		}
		bob := users[1]
		v2 := &v2Client{c: bob, rooms: map[string]*roomView{}}
		ss := &ssClient{c: bob, rooms: map[string]*roomView{}}
		rng := rand.New(rand.NewPCG(propSeed(), 4186))
		var rooms []string
		txn := 0
		do := func(c *mxtest.Client, method, path string, body any) {
			c.Do(method, path, body) // some operations are refused (not invited, not joined): both syncs must agree anyway
		}
		steps := 120
		if testing.Short() {
			steps = 25
		}
		for step := range steps {
			u := users[rng.IntN(len(users))]
			switch op := rng.IntN(10); {
			case op == 0 || len(rooms) == 0:
				preset := []string{"private_chat", "public_chat"}[rng.IntN(2)]
				id := u.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": preset, "name": fmt.Sprintf("room %d", step)}).Str("room_id")
				rooms = append(rooms, id)
			case op <= 3:
				txn++
				do(u, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", rooms[rng.IntN(len(rooms))], fmt.Sprint("p", txn)), map[string]any{"msgtype": "m.text", "body": fmt.Sprint("m", txn)})
			case op == 4:
				do(u, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", rooms[rng.IntN(len(rooms))]), map[string]any{"user_id": users[rng.IntN(3)].UserID})
			case op <= 6:
				do(u, "POST", mxtest.Path("/_matrix/client/v3/join/%s", rooms[rng.IntN(len(rooms))]), map[string]any{})
			case op == 7:
				do(u, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", rooms[rng.IntN(len(rooms))]), map[string]any{})
			case op == 8:
				do(u, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", rooms[rng.IntN(len(rooms))]), map[string]any{"user_id": users[rng.IntN(3)].UserID})
			default:
				do(u, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.name/", rooms[rng.IntN(len(rooms))]), map[string]any{"name": fmt.Sprint("renamed ", step)})
			}
			if rng.IntN(3) == 0 || step == steps-1 {
				// Both clients catch up; the positions are read after the
				// writes committed.
				time.Sleep(20 * time.Millisecond)
				v2.sync(t)
				ss.sync(t)
				compareViews(t, step, v2.rooms, ss.rooms)
			}
		}
		// A fresh sliding sync connection sees the same.
		fresh := &ssClient{c: bob, rooms: map[string]*roomView{}}
		fresh.sync(t)
		compareViews(t, -1, v2.rooms, fresh.rooms)
		joined := 0
		for _, r := range v2.rooms {
			if r.membership == "join" {
				joined++
			}
		}
		t.Logf("%d rooms made, bob is in %d, sliding sync lists %d", len(rooms), joined, fresh.count)
	})
}

func compareViews(t *testing.T, step int, v2, ss map[string]*roomView) {
	t.Helper()
	var want, got []string
	for id, r := range v2 {
		if r.membership == "join" || r.membership == "invite" {
			want = append(want, id+" "+r.membership)
		}
	}
	for id, r := range ss {
		if r.membership == "join" || r.membership == "invite" {
			got = append(got, id+" "+r.membership)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Fatalf("step %d: /sync rooms %v, sliding sync %v", step, want, got)
	}
	for id, r := range v2 {
		if r.membership != "join" {
			continue
		}
		s := ss[id]
		if s.lastEvent != r.lastEvent || s.joined != r.joined || s.notif != r.notif {
			t.Fatalf("step %d, room %s: /sync %+v, sliding sync %+v", step, id, *r, *s)
		}
	}
}

func propSeed() uint64 {
	var n uint64 = 18
	if s := os.Getenv("SALON_PROP_SEED"); s != "" {
		fmt.Sscan(s, &n)
	}
	return n
}
