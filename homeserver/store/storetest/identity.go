package storetest

import (
	"errors"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func testLDAP(t *testing.T, s store.Store) {
	u := store.LDAPUser{EntryID: "uuid-1", DN: "uid=alice,ou=people,dc=test", DisplayName: "Alice", Mail: "alice@test", UpdatedTS: 5}
	if err := s.CreateLDAPAccount(ctx, account("alice"), "Alice", u); err != nil {
		t.Fatal(err)
	}
	if acc, err := s.Account(ctx, "alice"); err != nil || acc.UserID != "@alice:test" {
		t.Fatalf("account = %+v, %v", acc, err)
	}
	if p, err := s.Profile(ctx, "@alice:test"); err != nil || p.DisplayName != "Alice" {
		t.Fatalf("profile = %+v, %v", p, err)
	}
	got, err := s.LDAPUserByEntry(ctx, "uuid-1")
	if err != nil || got.Localpart != "alice" || got.DN != u.DN || got.Mail != "alice@test" || got.DisplayName != "Alice" {
		t.Fatalf("LDAPUserByEntry = %+v, %v", got, err)
	}
	if got, err := s.LDAPUserByLocalpart(ctx, "alice"); err != nil || got.EntryID != "uuid-1" {
		t.Fatalf("LDAPUserByLocalpart = %+v, %v", got, err)
	}
	if _, err := s.LDAPUserByEntry(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown entry: %v", err)
	}

	// A second entry wanting the same localpart, or the same entry again:
	// refused, and nothing half-made is left behind.
	if err := s.CreateLDAPAccount(ctx, account("alice"), "", store.LDAPUser{EntryID: "uuid-2"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("localpart collision: %v", err)
	}
	if err := s.CreateLDAPAccount(ctx, account("alice2"), "", store.LDAPUser{EntryID: "uuid-1"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("entry linked twice: %v", err)
	}
	if _, err := s.Account(ctx, "alice2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused link left its account behind: %v", err)
	}
	if err := s.CreateAccount(ctx, account("bob"), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLDAPAccount(ctx, account("bob"), "", store.LDAPUser{EntryID: "uuid-3"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("local account taken over: %v", err)
	}
	if _, err := s.LDAPUserByEntry(ctx, "uuid-3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused link stored: %v", err)
	}

	u.DN, u.DisplayName, u.Mail, u.UpdatedTS = "uid=alice.smith,ou=people,dc=test", "Alice Smith", "as@test", 9
	if err := s.UpdateLDAPUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateLDAPUser(ctx, store.LDAPUser{EntryID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if err := s.SetLDAPMissing(ctx, "uuid-1", 1234); err != nil {
		t.Fatal(err)
	}
	all, err := s.LDAPUsers(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("LDAPUsers = %+v, %v", all, err)
	}
	if g := all[0]; g.DN != u.DN || g.DisplayName != "Alice Smith" || g.Mail != "as@test" || g.MissingSinceTS != 1234 || g.UpdatedTS != 9 || g.Localpart != "alice" {
		t.Fatalf("after update: %+v", g)
	}

	for _, m := range []store.LDAPMembership{
		{RoomID: "!a:test", UserID: "@alice:test", Group: "cn=g1", AddedTS: 1},
		{RoomID: "!a:test", UserID: "@bob:test", Group: "cn=g1", AddedTS: 2},
		{RoomID: "!b:test", UserID: "@alice:test", Group: "cn=g2", AddedTS: 3},
		{RoomID: "!a:test", UserID: "@alice:test", Group: "cn=g3", AddedTS: 4}, // replaces
	} {
		if err := s.PutLDAPMemberships(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// Several in one call: a later one of the same room and user wins.
	if err := s.PutLDAPMemberships(ctx,
		store.LDAPMembership{RoomID: "!c:test", UserID: "@carol:test", Group: "cn=g1", AddedTS: 5},
		store.LDAPMembership{RoomID: "!c:test", UserID: "@dave:test", Group: "cn=g1", AddedTS: 6},
		store.LDAPMembership{RoomID: "!c:test", UserID: "@carol:test", Group: "cn=g2", AddedTS: 7},
	); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.LDAPMemberships(ctx, "!c:test"); err != nil || len(ms) != 2 || ms[0].UserID != "@carol:test" || ms[0].Group != "cn=g2" || ms[0].AddedTS != 7 || ms[1].UserID != "@dave:test" {
		t.Fatalf("batch: %+v, %v", ms, err)
	}
	if err := s.PutLDAPMemberships(ctx); err != nil {
		t.Fatalf("none: %v", err)
	}
	if err := s.DeleteLDAPMemberships(ctx, "!c:test", "@carol:test", "@dave:test", "@nobody:test"); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.LDAPMemberships(ctx, "!c:test"); err != nil || len(ms) != 0 {
		t.Fatalf("after deleting both: %+v, %v", ms, err)
	}
	if err := s.DeleteLDAPMemberships(ctx, "!c:test"); err != nil {
		t.Fatalf("none: %v", err)
	}
	ms, err := s.LDAPMemberships(ctx, "!a:test")
	if err != nil || len(ms) != 2 || ms[0].UserID != "@alice:test" || ms[0].Group != "cn=g3" || ms[0].AddedTS != 4 || ms[1].UserID != "@bob:test" {
		t.Fatalf("LDAPMemberships = %+v, %v", ms, err)
	}
	if err := s.DeleteLDAPMemberships(ctx, "!a:test", "@alice:test"); err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.LDAPMemberships(ctx, "!a:test"); len(ms) != 1 || ms[0].UserID != "@bob:test" {
		t.Fatalf("after delete: %+v", ms)
	}
	if ms, _ := s.LDAPMemberships(ctx, "!b:test"); len(ms) != 1 {
		t.Fatalf("other room touched: %+v", ms)
	}
}
