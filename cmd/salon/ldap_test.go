package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/identity/ldap"
	"github.com/salonhq/salon/homeserver/identity/ldap/ldaptest"
	"github.com/salonhq/salon/homeserver/mxtest"
)

// ldapConfig points the server at a test slapd.
func ldapConfig(dir *ldaptest.Server) func(*Config) {
	return func(c *Config) {
		l := ldap.Defaults()
		l.URL = dir.URL
		l.BindDN, l.BindPassword = ldaptest.ServiceDN, ldaptest.ServicePW
		l.BaseDN = ldaptest.People
		l.UserFilter = ldaptest.UserFilter
		l.Directory.Enabled = true
		c.LDAP = l
	}
}

func loginBody(user, pw string) map[string]any {
	return map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user}, "password": pw}
}

func displayName(t *testing.T, c *mxtest.Client, userID string) string {
	t.Helper()
	return c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", userID), nil).Str("displayname")
}

// TestLDAPSignIn: people sign in with their directory password; the first
// sign-in makes the account, later ones keep its display name in step and
// find it again after a rename; wrong passwords, filter injection and
// disabled entries are refused; a directory that is down gives a clean 503
// while local accounts sign in as before.
func TestLDAPSignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		dir := ldaptest.Start(t)
		srv := startServer(t, db, ldapConfig(dir))
		local := mxtest.Register(t, srv.URL, "localprof", "local password")
		anon := mxtest.New(t, srv.URL)

		alice := mxtest.Login(t, srv.URL, "alice", "alice-pw")
		if alice.UserID != "@alice:localhost" {
			t.Fatalf("first sign-in: user %s", alice.UserID)
		}
		if n := displayName(t, local, alice.UserID); n != "Alice Liddell" {
			t.Fatalf("display name %q", n)
		}
		alice.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)

		// The directory renames her and changes her name: same account,
		// new display name.
		dir.Modify(t, "dn: uid=alice,"+ldaptest.People+"\nchangetype: modify\nreplace: cn\ncn: Alice Kingsleigh\n\n"+
			"dn: uid=alice,"+ldaptest.People+"\nchangetype: modrdn\nnewrdn: uid=alice.k\ndeleteoldrdn: 1\n")
		again := mxtest.Login(t, srv.URL, "alice.k", "alice-pw")
		if again.UserID != alice.UserID {
			t.Fatalf("after a rename: %s, want %s", again.UserID, alice.UserID)
		}
		if n := displayName(t, local, alice.UserID); n != "Alice Kingsleigh" {
			t.Fatalf("display name after change in the directory: %q", n)
		}
		// Her old localpart still signs her in (the entry is found by its ID).
		if c := mxtest.Login(t, srv.URL, "@alice:localhost", "alice-pw"); c.UserID != alice.UserID {
			t.Fatalf("by Matrix ID: %s", c.UserID)
		}
		// The directory owns the password.
		alice.MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/account/password", map[string]any{
			"new_password": "a local one now",
			"auth":         map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": alice.UserID}, "password": "alice-pw"},
		})

		for _, tc := range []struct{ name, user, pw string }{
			{"wrong password", "alice.k", "not her password"},
			{"empty password", "alice.k", ""},
			{"unknown", "nobody", "nobody-pw"},
			{"disabled", "mallory", "mallory-pw"},
			{"injection wildcard", "*", "bob-pw"},
			{"injection or", "*)(uid=*", "bob-pw"},
			{"injection into a real name", "bob)(|(uid=*", "bob-pw"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				anon.MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", loginBody(tc.user, tc.pw))
			})
		}
		// A directory name that is also a local account's signs in to the
		// local account, with its local password only.
		mxtest.Register(t, srv.URL, "carol", "carol's local password")
		anon.MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", loginBody("carol", "carol-pw"))
		if c := mxtest.Login(t, srv.URL, "carol", "carol's local password"); c.UserID != "@carol:localhost" {
			t.Fatalf("local carol: %s", c.UserID)
		}
		// Nothing was made for the refused names.
		local.MustErr(404, "M_NOT_FOUND", "GET", mxtest.Path("/_matrix/client/v3/profile/%s", "@bob:localhost"), nil)

		// Disabled in the directory after signing in: refused from then on.
		dir.Modify(t, "dn: uid=alice.k,"+ldaptest.People+"\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n")
		anon.MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", loginBody("alice.k", "alice-pw"))

		// The directory goes down.
		dir.Stop()
		r := anon.Do("POST", "/_matrix/client/v3/login", loginBody("bob", "bob-pw"))
		if r.Status != 503 || r.Errcode() != "M_UNKNOWN" {
			t.Fatalf("directory down: %d %s", r.Status, r.Raw)
		}
		mxtest.Login(t, srv.URL, "localprof", "local password")
		local.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
		alice.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil) // sessions go on
	})
}

// TestLDAPDirectoryDown: a directory unreachable from the start does not
// stop the server; LDAP sign-in answers 503, local accounts sign in.
func TestLDAPDirectoryDown(t *testing.T) {
	dir := ldaptest.Start(t)
	dir.Stop()
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db, ldapConfig(dir))
		mxtest.Register(t, srv.URL, "localprof", "local password")
		r := mxtest.New(t, srv.URL).Do("POST", "/_matrix/client/v3/login", loginBody("alice", "alice-pw"))
		if r.Status != 503 || r.Errcode() != "M_UNKNOWN" {
			t.Fatalf("directory down: %d %s", r.Status, r.Raw)
		}
		mxtest.Login(t, srv.URL, "localprof", "local password")
		// The directory search gives the local answer.
		c := mxtest.Login(t, srv.URL, "localprof", "local password")
		c.Must(200, "POST", "/_matrix/client/v3/user_directory/search", map[string]any{"search_term": "carol"})
	})
}

// TestLDAPDirectorySearchAndInvite: the user directory finds people who
// have never signed in, an invite to them is accepted, and it is waiting
// for them at their first sign-in.
func TestLDAPDirectorySearchAndInvite(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		dir := ldaptest.Start(t)
		srv := startServer(t, db, ldapConfig(dir))
		prof := mxtest.Register(t, srv.URL, "prof", "prof password")
		search := func(term string) []any {
			r := prof.Must(200, "POST", "/_matrix/client/v3/user_directory/search", map[string]any{"search_term": term, "limit": 10})
			return r.Body["results"].([]any)
		}
		got := search("carol")
		if len(got) != 1 || got[0].(map[string]any)["user_id"] != "@carol:localhost" || got[0].(map[string]any)["display_name"] != "Carol Danvers" {
			t.Fatalf("search carol: %v", got)
		}
		if got := search("dave@salon"); len(got) != 1 || got[0].(map[string]any)["user_id"] != "@dave.grohl:localhost" {
			t.Fatalf("search by mail: %v", got)
		}
		if got := search("mallory"); len(got) != 0 {
			t.Fatalf("a disabled entry was found: %v", got)
		}
		if got := search("*"); len(got) != 0 {
			t.Fatalf("a * lists the directory: %v", got)
		}
		if got := search("c"); len(got) != 0 {
			t.Fatalf("a one-letter term went to the directory: %v", got)
		}
		if got := search("salon.test"); len(got) > ldap.Defaults().Directory.MaxResults || len(got) != 4 {
			t.Fatalf("search by domain: %d results: %v", len(got), got)
		}
		mxtest.New(t, srv.URL).MustErr(401, "M_MISSING_TOKEN", "POST", "/_matrix/client/v3/user_directory/search", map[string]any{"search_term": "carol"})

		room := prof.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "Lab"}).Str("room_id")
		prof.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": "@carol:localhost"})
		prof.MustErr(404, "M_NOT_FOUND", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": "@zed:localhost"})
		prof.MustErr(404, "M_NOT_FOUND", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": "@mallory:localhost"})

		carol := mxtest.Login(t, srv.URL, "carol", "carol-pw")
		s := carol.Must(200, "GET", "/_matrix/client/v3/sync", nil)
		invites, _ := s.Body["rooms"].(map[string]any)["invite"].(map[string]any)
		if _, ok := invites[room]; !ok {
			t.Fatalf("carol's first sync has no invite to %s: %s", room, s.Raw)
		}
		carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	})
}

// members maps each member of a room to their membership event's content
// (and sender), as the room's members see it.
func members(t *testing.T, c *mxtest.Client, room string) map[string]map[string]any {
	t.Helper()
	r := c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/members", room), nil)
	out := map[string]map[string]any{}
	for _, e := range r.Body["chunk"].([]any) {
		ev := e.(map[string]any)
		content := ev["content"].(map[string]any)
		content["sender"] = ev["sender"]
		out[ev["state_key"].(string)] = content
	}
	return out
}

func membership(m map[string]map[string]any, user string) string {
	if c, ok := m[user]; ok {
		s, _ := c["membership"].(string)
		return s
	}
	return ""
}

// waitFor polls cond until it holds (generous: the machine is shared).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLDAPGroupSync: room membership follows LDAP groups. The sync
// invites group members (also those who never signed in), joins them in
// join mode at their sign-in, removes those who left the group when so
// configured, and leaves members added by hand alone. `salon ldap sync
// --dry-run` prints what it would change.
func TestLDAPGroupSync(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		dir := ldaptest.Start(t)
		physics, chemistry := "cn=physics,"+ldaptest.Groups, "cn=chemistry,"+ldaptest.Groups
		srv := startServer(t, db, ldapConfig(dir), func(c *Config) {
			c.LDAP.Sync.Interval = time.Hour // the test syncs by hand
			c.LDAP.Sync.ChangesPerSecond = 1000
			c.LDAP.Groups = []ldap.GroupConfig{
				{DN: physics, Rooms: []string{"#physics:localhost"}, RemoveLeavers: true},
				{DN: chemistry, MemberAttribute: "memberUid", Rooms: []string{"#chemistry:localhost"}, Mode: "join"},
			}
		})
		l := srv.srv.hs.LDAP
		ctx := context.Background()
		waitRunSynced(t, l)
		bot := l.Bot()
		prof := mxtest.Register(t, srv.URL, "prof", "prof password")
		ta := mxtest.Register(t, srv.URL, "ta", "ta password")
		mk := func(alias string) string {
			return prof.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
				"room_alias_name": alias, "invite": []string{bot, ta.UserID},
				"power_level_content_override": map[string]any{"users": map[string]any{prof.UserID: 100, bot: 50}},
			}).Str("room_id")
		}
		physRoom, chemRoom := mk("physics"), mk("chemistry")
		ta.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", physRoom), map[string]any{}) // added by hand

		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		m := members(t, prof, physRoom)
		for _, u := range []string{"@alice:localhost", "@bob:localhost"} {
			if membership(m, u) != "invite" || m[u]["sender"] != bot || m[u]["reason"] != "member of LDAP group "+physics {
				t.Fatalf("%s in physics: %v", u, m[u])
			}
		}
		if membership(m, bot) != "join" || membership(m, ta.UserID) != "join" {
			t.Fatalf("physics members: %v", m)
		}
		// The room shows which group it follows.
		marker := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/%s/", physRoom, ldap.GroupsEventType), nil)
		if g := marker.Body["groups"].([]any); len(g) != 1 || g[0].(map[string]any)["group"] != physics || g[0].(map[string]any)["remove_leavers"] != true {
			t.Fatalf("groups state: %s", marker.Raw)
		}
		// Carol has no account yet: invited to the join-mode room...
		if m := members(t, prof, chemRoom); membership(m, "@carol:localhost") != "invite" {
			t.Fatalf("chemistry: %v", m)
		}
		// ...and joined at her first sign-in.
		carol := mxtest.Login(t, srv.URL, "carol", "carol-pw")
		waitFor(t, "carol joined to chemistry", func() bool {
			return membership(members(t, prof, chemRoom), carol.UserID) == "join"
		})
		// Alice accepts.
		alice := mxtest.Login(t, srv.URL, "alice", "alice-pw")
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", physRoom), map[string]any{})

		// The directory changes: Bob and Carol swap, Dave joins physics.
		dir.Modify(t, "dn: "+physics+"\nchangetype: modify\ndelete: member\nmember: uid=bob,"+ldaptest.People+
			"\n-\nadd: member\nmember: uid=Dave.Grohl,"+ldaptest.People+"\n\n"+
			"dn: "+chemistry+"\nchangetype: modify\ndelete: memberUid\nmemberUid: carol\n")

		// The dry run says so and changes nothing.
		cfgFile := filepath.Join(t.TempDir(), "salon.yaml")
		cfgYAML, _ := json.Marshal(map[string]any{"ldap": map[string]any{
			"url": dir.URL, "bind_dn": ldaptest.ServiceDN, "bind_password": ldaptest.ServicePW, "base_dn": ldaptest.People, "user_filter": ldaptest.UserFilter,
			"groups": []map[string]any{
				{"dn": physics, "rooms": []string{"#physics:localhost"}, "remove_leavers": true},
				{"dn": chemistry, "member_attribute": "memberUid", "rooms": []string{"#chemistry:localhost"}, "mode": "join"},
			},
		}})
		if err := os.WriteFile(cfgFile, cfgYAML, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runCLI(t, "ldap", "sync", "--dry-run", "--config", cfgFile, "--data-dir", srv.srv.cfg.DataDir, "--database", db)
		if code != 0 {
			t.Fatalf("dry run: %d %s %s", code, out, errs)
		}
		for _, want := range []string{
			"would invite @dave.grohl:localhost to #physics:localhost (member of LDAP group " + physics + ")",
			"would remove @bob:localhost from #physics:localhost (no longer a member of LDAP group " + physics + ")",
			"2 change(s)",
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("dry run output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "carol") || strings.Contains(out, ta.UserID) {
			t.Fatalf("dry run would touch carol (remove_leavers off) or the hand-added member:\n%s", out)
		}
		if m := members(t, prof, physRoom); membership(m, "@bob:localhost") != "invite" || membership(m, "@dave.grohl:localhost") != "" {
			t.Fatalf("the dry run changed the room: %v", m)
		}

		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		m = members(t, prof, physRoom)
		if membership(m, "@bob:localhost") != "leave" || m["@bob:localhost"]["reason"] != "no longer a member of LDAP group "+physics || m["@bob:localhost"]["sender"] != bot {
			t.Fatalf("bob after leaving physics: %v", m["@bob:localhost"])
		}
		if membership(m, "@dave.grohl:localhost") != "invite" {
			t.Fatalf("dave: %v", m)
		}
		if membership(m, ta.UserID) != "join" || membership(m, alice.UserID) != "join" {
			t.Fatalf("hand-added or remaining members touched: %v", m)
		}
		if membership(members(t, prof, chemRoom), carol.UserID) != "join" {
			t.Fatal("carol removed from chemistry although remove_leavers is off")
		}
		// Someone who declines is not invited again.
		dave := mxtest.Login(t, srv.URL, "dave.grohl", "Dave.Grohl-pw")
		dave.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", physRoom), map[string]any{})
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if m := members(t, prof, physRoom); membership(m, dave.UserID) != "leave" {
			t.Fatalf("dave was invited again after declining: %v", m[dave.UserID])
		}
		// Syncs that change nothing send nothing: one groups event in all.
		msgs := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=200", physRoom), nil)
		markers := 0
		for _, e := range msgs.Body["chunk"].([]any) {
			if e.(map[string]any)["type"] == ldap.GroupsEventType {
				markers++
			}
		}
		if markers != 1 {
			t.Fatalf("%d groups state events after 4 syncs, want 1", markers)
		}

		// The directory goes down: the sync reports it and changes nothing;
		// the dry run says so.
		before := members(t, prof, physRoom)
		dir.Stop()
		if err := l.Sync(ctx); err == nil {
			t.Fatal("sync with the directory down reported no error")
		}
		if after := members(t, prof, physRoom); !reflect.DeepEqual(before, after) {
			t.Fatalf("sync with the directory down changed the room:\n%v\n%v", before, after)
		}
		code, out, errs = runCLI(t, "ldap", "sync", "--dry-run", "--config", cfgFile, "--data-dir", srv.srv.cfg.DataDir, "--database", db)
		if code != 1 || !strings.Contains(errs, "directory unavailable") {
			t.Fatalf("dry run with the directory down: %d %q %q", code, out, errs)
		}
		prof.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
		_ = fmt.Sprint
	})
}

// TestLDAPGoneDeactivates: with missing: deactivate, an account whose
// entry is deleted from the directory is deactivated once the grace
// period has passed: its sessions end and it cannot sign in. With the
// default (refuse) it only cannot sign in.
func TestLDAPGoneDeactivates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		dir := ldaptest.Start(t)
		srv := startServer(t, db, ldapConfig(dir), func(c *Config) {
			c.LDAP.Sync.Interval = time.Hour
			c.LDAP.Missing, c.LDAP.DeactivateAfter = "deactivate", time.Millisecond
		})
		l := srv.srv.hs.LDAP
		bob := mxtest.Login(t, srv.URL, "bob", "bob-pw")
		carol := mxtest.Login(t, srv.URL, "carol", "carol-pw")
		if err := l.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		bob.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)

		dir.Modify(t, "dn: uid=bob,"+ldaptest.People+"\nchangetype: delete\n")
		if err := l.Sync(context.Background()); err != nil { // notices bob is gone
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // past deactivate_after
		if err := l.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		bob.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)
		mxtest.New(t, srv.URL).MustErr(403, "M_USER_DEACTIVATED", "POST", "/_matrix/client/v3/login", loginBody("@bob:localhost", "bob-pw"))
		carol.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)

		// A directory that answers with nobody at all is a fault, not
		// everyone leaving: carol's account stays.
		dir.Modify(t, "dn: uid=carol,"+ldaptest.People+"\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n\n"+
			"dn: uid=alice,"+ldaptest.People+"\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n\n"+
			"dn: uid=Dave.Grohl,"+ldaptest.People+"\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n")
		for range 2 {
			if err := l.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		carol.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
	})
}

// TestLDAPLargeGroupPaged: a group larger than the directory's size limit
// (500 here) is read whole through the paged-results control.
func TestLDAPLargeGroupPaged(t *testing.T) {
	const n = 1200
	var people, group strings.Builder
	group.WriteString("dn: cn=lecture," + ldaptest.Groups + "\nobjectClass: groupOfNames\ncn: lecture\n")
	for i := range n {
		fmt.Fprintf(&people, "dn: uid=s%04d,%s\nobjectClass: inetOrgPerson\nuid: s%04d\ncn: Student %d\nsn: S\nuserPassword: pw\n\n", i, ldaptest.People, i, i)
		fmt.Fprintf(&group, "member: uid=s%04d,%s\n", i, ldaptest.People)
	}
	dir := ldaptest.Start(t, people.String(), group.String())
	db := backends(t)["sqlite"](t)
	srv := startServer(t, db, ldapConfig(dir), func(c *Config) {
		c.LDAP.Sync.Interval = time.Hour
		c.LDAP.Groups = []ldap.GroupConfig{{DN: "cn=lecture," + ldaptest.Groups, Rooms: []string{"#lecture:localhost"}}}
	})
	waitRunSynced(t, srv.srv.hs.LDAP)
	prof := mxtest.Register(t, srv.URL, "prof", "prof password")
	prof.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_alias_name": "lecture", "invite": []string{srv.srv.hs.LDAP.Bot()}})
	plan, err := srv.srv.hs.LDAP.PlanSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != n || len(plan.Problems) != 0 {
		t.Fatalf("plan: %d changes, problems %v", len(plan.Changes), plan.Problems)
	}
}

// BenchmarkLDAPSignIn: password sign-ins per second through LDAP
// (search-then-bind against a real slapd, then a new device), over HTTP,
// 300 people (a lecture hall) signing in in turn; their accounts exist
// after the first round.
func BenchmarkLDAPSignIn(b *testing.B) {
	const n = 300
	var people strings.Builder
	for i := range n {
		fmt.Fprintf(&people, "dn: uid=s%03d,%s\nobjectClass: inetOrgPerson\nuid: s%03d\ncn: Student %d\nsn: S\nuserPassword: pw-%03d\n\n", i, ldaptest.People, i, i, i)
	}
	dir := ldaptest.Start(b, people.String())
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			srv := startServer(b, backends(b)[name](b), func(c *Config) {
				ldapConfig(dir)(c)
				c.RateLimits.LoginPerIP.PerSecond, c.RateLimits.LoginPerAccount.PerSecond = 0, 0
			})
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			body := `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"s%03d"},"password":"pw-%03d","device_id":"D%d"}`
			var seq atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					u := i % n
					res, err := hc.Post(srv.URL+"/_matrix/client/v3/login", "application/json",
						strings.NewReader(fmt.Sprintf(body, u, u, i%4)))
					if err != nil || res.StatusCode != 200 {
						b.Errorf("login: %v %v", err, res)
						return
					}
					res.Body.Close()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signins/s")
		})
	}
}

// BenchmarkLDAPGroupSync: one full sync of LDAP_BENCH_GROUPS groups (50)
// of LDAP_BENCH_MEMBERS members (500) each against slapd, each group
// feeding its own room: every member invited (none has signed in), as
// ordinary membership events. Reports the time, the LDAP queries and the
// events written. One sync per iteration: run with -benchtime 1x.
func BenchmarkLDAPGroupSync(b *testing.B) {
	groups, size := envInt("LDAP_BENCH_GROUPS", 50), envInt("LDAP_BENCH_MEMBERS", 500)
	var ldif strings.Builder
	for i := range size {
		fmt.Fprintf(&ldif, "dn: uid=m%04d,%s\nobjectClass: inetOrgPerson\nuid: m%04d\ncn: Member %d\nsn: M\nuserPassword: pw\n\n", i, ldaptest.People, i, i)
	}
	var cfgGroups []ldap.GroupConfig
	for g := range groups {
		fmt.Fprintf(&ldif, "dn: cn=g%02d,%s\nobjectClass: groupOfNames\ncn: g%02d\n", g, ldaptest.Groups, g)
		for i := range size {
			fmt.Fprintf(&ldif, "member: uid=m%04d,%s\n", i, ldaptest.People)
		}
		ldif.WriteString("\n")
		cfgGroups = append(cfgGroups, ldap.GroupConfig{DN: fmt.Sprintf("cn=g%02d,%s", g, ldaptest.Groups), Rooms: []string{fmt.Sprintf("#g%02d:localhost", g)}})
	}
	dir := ldaptest.Start(b, ldif.String())
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			var took time.Duration
			var queries, changes int64
			for range b.N {
				b.StopTimer()
				srv := startServer(b, backends(b)[name](b), ldapConfig(dir), func(c *Config) {
					c.LDAP.Sync.Interval, c.LDAP.Sync.ChangesPerSecond = time.Hour, 1e6 // unpaced
					c.LDAP.Groups = cfgGroups
					c.RateLimits.MessagesPerUser.PerSecond = 0
				})
				l := srv.srv.hs.LDAP
				ctx := context.Background()
				waitRunSynced(b, l)
				prof := mxtest.Register(b, srv.URL, "prof", "prof password")
				for g := range groups {
					prof.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_alias_name": fmt.Sprintf("g%02d", g), "invite": []string{l.Bot()},
						"power_level_content_override": map[string]any{"users": map[string]any{prof.UserID: 100, l.Bot(): 50}}})
				}
				if plan, err := l.PlanSync(ctx); err != nil || len(plan.Problems) > 0 || len(plan.Changes) != groups*size {
					b.Fatalf("plan: %d changes, problems %v, %v", len(plan.Changes), plan.Problems, err)
				}
				b.StartTimer()
				if err := l.Sync(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				r := l.LastSync()
				if r.Changes != groups*size || r.Failed != 0 {
					b.Fatalf("sync: %+v, want %d changes", r, groups*size)
				}
				took += r.Took
				queries += r.Queries
				changes += int64(r.Changes)
				srv.Stop()
			}
			b.ReportMetric(took.Seconds()/float64(b.N), "s/sync")
			b.ReportMetric(float64(queries)/float64(b.N), "ldap-queries/sync")
			b.ReportMetric(float64(changes)/float64(b.N), "events/sync")
			b.ReportMetric(float64(changes)/took.Seconds(), "events/s")
		})
	}
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err == nil && n > 0 {
		return n
	}
	return def
}

// TestLDAPConfigCheck: `salon config check` binds to the directory as the
// service account, and says so when it cannot.
func TestLDAPConfigCheck(t *testing.T) {
	dir := ldaptest.Start(t)
	write := func(pw string) string {
		p := filepath.Join(t.TempDir(), "salon.yaml")
		y := fmt.Sprintf("ldap:\n  url: %s\n  bind_dn: %s\n  bind_password: %s\n  base_dn: %s\n", dir.URL, ldaptest.ServiceDN, pw, ldaptest.People)
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if code, out, errs := runCLI(t, "config", "check", "--config", write(ldaptest.ServicePW)); code != 0 || !strings.Contains(out, "LDAP: the service account binds") {
		t.Fatalf("good bind: %d %q %q", code, out, errs)
	}
	code, _, errs := runCLI(t, "config", "check", "--config", write("wrong-password"))
	if code != 1 || !strings.Contains(errs, "service bind (ldap.bind_dn) was refused") || strings.Contains(errs, "wrong-password") {
		t.Fatalf("bad bind: %d %q", code, errs)
	}
	dir.Stop()
	if code, _, errs := runCLI(t, "config", "check", "--config", write(ldaptest.ServicePW)); code != 1 || !strings.Contains(errs, "directory unavailable") {
		t.Fatalf("directory down: %d %q", code, errs)
	}
}

// waitRunSynced waits for the server's sync at start (which also makes the
// sync account), so that the test's own syncs are the only ones after it
// (the next is sync.interval later).
func waitRunSynced(t testing.TB, l *ldap.Service) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for l.LastSync().Took == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the server's first LDAP sync did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLDAPUIAIsTheUsersOwn: after a rename, someone else may take a
// person's old login name in the directory. That person's password must
// not pass the user-interactive auth of the first person's account (whose
// localpart is the old name), even when they have an account of their own.
func TestLDAPUIAIsTheUsersOwn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) { testLDAPUIAIsTheUsersOwn(t, db) })
}

func testLDAPUIAIsTheUsersOwn(t *testing.T, db string) {
	dir := ldaptest.Start(t)
	srv := startServer(t, db, ldapConfig(dir))
	alice := mxtest.Login(t, srv.URL, "alice", "alice-pw")
	bob := mxtest.Login(t, srv.URL, "bob", "bob-pw")
	// Alice becomes alice.k; Bob's entry takes the name alice.
	dir.Modify(t, "dn: uid=alice,"+ldaptest.People+"\nchangetype: modrdn\nnewrdn: uid=alice.k\ndeleteoldrdn: 1\n\n"+
		"dn: uid=bob,"+ldaptest.People+"\nchangetype: modrdn\nnewrdn: uid=alice\ndeleteoldrdn: 1\n")
	first := alice.Do("DELETE", mxtest.Path("/_matrix/client/v3/devices/%s", alice.DeviceID), map[string]any{})
	r := alice.Do("DELETE", mxtest.Path("/_matrix/client/v3/devices/%s", alice.DeviceID), map[string]any{"auth": map[string]any{
		"type": "m.login.password", "session": first.Str("session"),
		"identifier": map[string]any{"type": "m.id.user", "user": alice.UserID}, "password": "bob-pw",
	}})
	if r.Status == 200 {
		t.Fatalf("bob's password deleted alice's device: %s", r.Raw)
	}
	alice.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
	// Signing in as "alice" with Bob's password is Bob's account.
	if c := mxtest.Login(t, srv.URL, "alice", "bob-pw"); c.UserID != bob.UserID {
		t.Fatalf("bob, now uid=alice, signs in as %s", c.UserID)
	}
	// Alice signs in with her new name.
	if c := mxtest.Login(t, srv.URL, "alice.k", "alice-pw"); c.UserID != alice.UserID {
		t.Fatalf("alice.k signs in as %s", c.UserID)
	}
}
