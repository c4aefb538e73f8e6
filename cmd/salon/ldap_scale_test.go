package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/identity/ldap"
	"github.com/salonhq/salon/homeserver/identity/ldap/ldaptest"
	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestLDAPLectureHall: 300 people of the directory, none of whom has an
// account yet, sign in at once (a lecture hall at the start of the
// hour, harder than the same 300 spread over the minute) with the default
// login rate limits. Every sign-in succeeds, makes its own account and
// gets a working token, all within a minute on a 2-core machine under
// the race detector. (The speed itself is BenchmarkLDAPSignIn's.)
func TestLDAPLectureHall(t *testing.T) {
	const n, clients = 300, 16
	var people strings.Builder
	for i := range n {
		fmt.Fprintf(&people, "dn: uid=h%03d,%s\nobjectClass: inetOrgPerson\nuid: h%03d\ncn: Hall %d\nsn: H\nuserPassword: pw-%03d\n\n", i, ldaptest.People, i, i, i)
	}
	dir := ldaptest.Start(t, people.String())
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db, ldapConfig(dir))
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: time.Minute}
		defer hc.CloseIdleConnections()
		type result struct {
			user, token string
			err         error
		}
		results := make([]result, n)
		next := make(chan int)
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					body := fmt.Sprintf(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"h%03d"},"password":"pw-%03d"}`, i, i)
					var out struct {
						UserID      string `json:"user_id"`
						AccessToken string `json:"access_token"`
					}
					res, err := hc.Post(srv.URL+"/_matrix/client/v3/login", "application/json", strings.NewReader(body))
					if err == nil {
						err = decodeOK(res, &out)
					}
					results[i] = result{out.UserID, out.AccessToken, err}
				}
			}()
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		took := time.Since(start)
		t.Logf("%d first sign-ins in %v (%.0f/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
		seen := map[string]bool{}
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("h%03d: %v", i, r.err)
			}
			if want := fmt.Sprintf("@h%03d:localhost", i); r.user != want || seen[r.user] {
				t.Fatalf("h%03d signed in as %s", i, r.user)
			}
			seen[r.user] = true
		}
		if took > time.Minute {
			t.Fatalf("%d sign-ins took %v, over a minute", n, took)
		}
		// Every token works.
		for _, i := range []int{0, n / 2, n - 1} {
			c := mxtest.New(t, srv.URL)
			c.Token = results[i].token
			if who := c.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil).Str("user_id"); who != results[i].user {
				t.Fatalf("whoami %s, want %s", who, results[i].user)
			}
		}
	})
}

// decodeOK reads a 200 answer's JSON into out.
func decodeOK(res *http.Response, out any) error {
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("HTTP %d: %s", res.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// TestLDAPGroup20k: a group of 20,000 people synced into one room against
// slapd: every member invited (as ordinary membership events from the
// sync account, in batches), the people read in pages, a second sync
// changing nothing, and after the directory drops 100 members and adds 100
// new people, exactly those changes. The speed is BenchmarkLDAPGroupSync's;
// the bound here is for a loaded 2-core machine under the race detector.
// Not in -short.
func TestLDAPGroup20k(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 people: not in -short")
	}
	const n, moved = 20000, 100
	group := "cn=everyone," + ldaptest.Groups
	var ldif strings.Builder
	for i := range n + moved {
		fmt.Fprintf(&ldif, "dn: uid=p%05d,%s\nobjectClass: inetOrgPerson\nuid: p%05d\ncn: Person %d\nsn: P\nuserPassword: pw\n\n", i, ldaptest.People, i, i)
	}
	fmt.Fprintf(&ldif, "dn: %s\nobjectClass: groupOfNames\ncn: everyone\n", group)
	for i := range n {
		fmt.Fprintf(&ldif, "member: uid=p%05d,%s\n", i, ldaptest.People)
	}
	dir := ldaptest.Start(t, ldif.String())
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db, ldapConfig(dir), func(c *Config) {
			c.LDAP.Sync.Interval = time.Hour // the test syncs by hand
			c.LDAP.Sync.ChangesPerSecond = 1e6
			c.LDAP.Groups = []ldap.GroupConfig{{DN: group, Rooms: []string{"#everyone:localhost"}, RemoveLeavers: true}}
		})
		l, rooms := srv.srv.hs.LDAP, srv.srv.hs.Rooms
		ctx := context.Background()
		waitRunSynced(t, l)
		prof := mxtest.Register(t, srv.URL, "prof", "prof password")
		room := prof.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_alias_name": "everyone", "invite": []string{l.Bot()},
			"power_level_content_override": map[string]any{"users": map[string]any{prof.UserID: 100, l.Bot(): 50}}}).Str("room_id")

		sync := func(wantChanges int) ldap.SyncReport {
			t.Helper()
			start := time.Now()
			if err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			r := l.LastSync()
			t.Logf("sync: %d changes, %d failed, %d LDAP queries, %v", r.Changes, r.Failed, r.Queries, r.Took.Round(time.Millisecond))
			if r.Changes != wantChanges || r.Failed != 0 {
				t.Fatalf("sync: %+v, want %d changes", r, wantChanges)
			}
			// The sync's own CPU for 10,000 invites into one room is
			// about 1.5 s without the race detector (a profile of
			// BenchmarkLDAPGroupSync); the bound leaves room for -race on
			// a heavily loaded 2-core machine (SQLite took 6 to 14 minutes
			// at load averages of 24 to 40 on 2 cores; PostgreSQL 2.5).
			if took := time.Since(start); took > 15*time.Minute {
				t.Fatalf("sync took %v", took)
			}
			return r
		}
		r := sync(n)
		// The people in pages of 500 (41 pages: the 100 not yet in the
		// group and the fixture's few are people too), the group's entry
		// once.
		if r.Queries < 42 || r.Queries > 44 {
			t.Fatalf("%d LDAP queries, want 42 (41 pages and the group)", r.Queries)
		}
		invited, err := rooms.Members(ctx, room, "invite")
		if err != nil || len(invited) != n {
			t.Fatalf("%d invited, %v", len(invited), err)
		}
		ev := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", room, "@p12345:localhost"), nil)
		if ev.Str("membership") != "invite" || ev.Str("reason") != "member of LDAP group "+group {
			t.Fatalf("p12345's member event: %s", ev.Raw)
		}

		// Nothing changed: nothing to do.
		sync(0)

		// The first 100 leave the group, 100 new people join it.
		var mod strings.Builder
		fmt.Fprintf(&mod, "dn: %s\nchangetype: modify\ndelete: member\n", group)
		for i := range moved {
			fmt.Fprintf(&mod, "member: uid=p%05d,%s\n", i, ldaptest.People)
		}
		mod.WriteString("-\nadd: member\n")
		for i := n; i < n+moved; i++ {
			fmt.Fprintf(&mod, "member: uid=p%05d,%s\n", i, ldaptest.People)
		}
		mod.WriteString("\n")
		dir.Modify(t, mod.String())
		// The directory is shared by both backends' runs: put it back.
		t.Cleanup(func() {
			var undo strings.Builder
			fmt.Fprintf(&undo, "dn: %s\nchangetype: modify\ndelete: member\n", group)
			for i := n; i < n+moved; i++ {
				fmt.Fprintf(&undo, "member: uid=p%05d,%s\n", i, ldaptest.People)
			}
			undo.WriteString("-\nadd: member\n")
			for i := range moved {
				fmt.Fprintf(&undo, "member: uid=p%05d,%s\n", i, ldaptest.People)
			}
			undo.WriteString("\n")
			dir.Modify(t, undo.String())
		})
		sync(2 * moved)
		invited, err = rooms.Members(ctx, room, "invite")
		if err != nil || len(invited) != n {
			t.Fatalf("after the change: %d invited, %v", len(invited), err)
		}
		for _, u := range []string{"@p00000:localhost", "@p00099:localhost"} {
			if m, _ := rooms.Membership(ctx, room, u); m != "leave" {
				t.Fatalf("%s left the group but is %q", u, m)
			}
		}
		for _, u := range []string{"@p00100:localhost", "@p20000:localhost", "@p20099:localhost"} {
			if m, _ := rooms.Membership(ctx, room, u); m != "invite" {
				t.Fatalf("%s is %q", u, m)
			}
		}
	})
}
