package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func testSSOIdentities(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.SSOIdentity(ctx, "uni", "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown identity: %v, want ErrNotFound", err)
	}
	a := store.SSOIdentity{IdPID: "uni", Subject: "alice", UserID: "@alice:test", Email: "alice@uni.example", CreatedTS: 10}
	if err := s.CreateSSOIdentity(ctx, a); err != nil {
		t.Fatal(err)
	}
	// The same subject at another provider is another person.
	b := store.SSOIdentity{IdPID: "cas", Subject: "alice", UserID: "@alice2:test", CreatedTS: 11}
	if err := s.CreateSSOIdentity(ctx, b); err != nil {
		t.Fatal(err)
	}
	dup := a
	dup.UserID = "@mallory:test"
	if err := s.CreateSSOIdentity(ctx, dup); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second link of one subject: %v, want ErrExists", err)
	}
	got, err := s.SSOIdentity(ctx, "uni", "alice")
	if err != nil || got != a {
		t.Fatalf("SSOIdentity = %+v, %v; want %+v", got, err, a)
	}
	c := store.SSOIdentity{IdPID: "cas", Subject: "alice-old", UserID: "@alice:test", CreatedTS: 12}
	if err := s.CreateSSOIdentity(ctx, c); err != nil {
		t.Fatal(err)
	}
	list, err := s.SSOIdentitiesOf(ctx, "@alice:test")
	if err != nil || len(list) != 2 || list[0] != a || list[1] != c {
		t.Fatalf("SSOIdentitiesOf = %+v, %v", list, err)
	}
	if list, err := s.SSOIdentitiesOf(ctx, "@nobody:test"); err != nil || len(list) != 0 {
		t.Fatalf("SSOIdentitiesOf(nobody) = %+v, %v", list, err)
	}
}

func testUseOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.UseOnce(ctx, "saml:uni", "id1", 200, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.UseOnce(ctx, "saml:uni", "id1", 200, 150); !errors.Is(err, store.ErrExists) {
		t.Fatalf("replay: %v, want ErrExists", err)
	}
	// Another scope has its own IDs.
	if err := s.UseOnce(ctx, "saml:other", "id1", 200, 150); err != nil {
		t.Fatal(err)
	}
	// Once expired, the record is forgotten (the assertion itself is no
	// longer valid by then).
	if err := s.UseOnce(ctx, "saml:uni", "id1", 400, 201); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}
