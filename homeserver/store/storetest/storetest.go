// Package storetest is the conformance suite every store backend must pass.
// Backends call Run from their tests with a function that opens a fresh,
// empty store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// Opener opens a new empty store for one subtest; the suite closes it.
type Opener func(t *testing.T) store.Store

// Run runs every conformance test against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"Profiles", testProfiles},
		{"Devices", testDevices},
		{"DeleteDevices", testDeleteDevices},
		{"Deactivate", testDeactivate},
		{"LoginTokens", testLoginTokens},
		{"ConcurrentWrites", testConcurrentWrites},
		{"RoomEvents", testRoomEvents},
		{"RelationsPage", testRelationsPage},
		{"AccountDataBatch", testAccountDataBatch},
		{"Aliases", testAliases},
		{"UserData", testUserData},
		{"StreamOrder", testStreamOrder},
		{"Delayed", testDelayed},
		{"Media", testMedia},
		{"UploadKeys", testUploadKeys},
		{"ClaimKeys", testClaimKeys},
		{"ClaimRace", testClaimRace},
		{"CrossSigning", testCrossSigning},
		{"ToDevice", testToDevice},
		{"DeleteDeviceKeys", testDeleteDeviceKeys},
		{"KeyCountsFollowWrites", testKeyCountsFollowWrites},
		{"Dehydrated", testDehydrated},
		{"DeviceKeysNames", testDeviceKeysNames},
		{"Search", testSearch},
		{"Pushers", testPushers},
		{"RefreshTokens", testRefreshTokens},
		{"ThreadRoots", testThreadRoots},
		{"KeyBackupVersions", testKeyBackupVersions},
		{"KeyBackupReplace", testKeyBackupReplace},
		{"KeyBackupKeys", testKeyBackupKeys},
		{"KeyBackupConcurrent", testKeyBackupConcurrent},
		{"KeyBackupDeactivate", testKeyBackupDeactivate},
		{"SSOIdentities", testSSOIdentities},
		{"UseOnce", testUseOnce},
		{"LDAP", testLDAP},
		{"FederationKeys", testFederationKeys},
		{"FederationOutbox", testFederationOutbox},
		{"RoomDAG", testRoomDAG},
		{"StateSnapshots", testStateSnapshots},
		{"Past", testPast},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

// PostgresURL is the database the PostgreSQL tests use. It returns "" (and
// the reason) when the tests should skip; under CI=true an unreachable
// database is not a reason to skip, the caller must fail.
func PostgresURL() string {
	if u := os.Getenv("SALON_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// MustReachPostgres reports whether an unreachable PostgreSQL fails the run
// (CI) rather than skipping the tests.
func MustReachPostgres() bool { return os.Getenv("CI") == "true" }

var ctx = context.Background()

func account(name string) store.Account {
	return store.Account{Localpart: name, UserID: "@" + name + ":test", PasswordHash: "hash-" + name, CreatedTS: 1000}
}

func testAccounts(t *testing.T, s store.Store) {
	a := account("alice")
	a.Admin = true
	if err := s.CreateAccount(ctx, a, "Alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, account("alice"), ""); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate account: got %v, want ErrExists", err)
	}
	got, err := s.Account(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got != a {
		t.Fatalf("account = %+v, want %+v", got, a)
	}
	if _, err := s.Account(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing account: got %v, want ErrNotFound", err)
	}
	if err := s.SetPasswordHash(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Account(ctx, "alice"); got.PasswordHash != "new" {
		t.Fatalf("password hash = %q", got.PasswordHash)
	}
	if err := s.SetPasswordHash(ctx, "bob", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("password of missing account: %v", err)
	}
}

func testProfiles(t *testing.T, s store.Store) {
	if err := s.CreateAccount(ctx, account("carol"), "Carol"); err != nil {
		t.Fatal(err)
	}
	p, err := s.Profile(ctx, "@carol:test")
	if err != nil || p.DisplayName != "Carol" || p.AvatarURL != "" {
		t.Fatalf("profile = %+v, %v", p, err)
	}
	if err := s.SetDisplayName(ctx, "@carol:test", "Caroline ☕"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAvatarURL(ctx, "@carol:test", "mxc://test/abc"); err != nil {
		t.Fatal(err)
	}
	p, _ = s.Profile(ctx, "@carol:test")
	if p.DisplayName != "Caroline ☕" || p.AvatarURL != "mxc://test/abc" {
		t.Fatalf("profile = %+v", p)
	}
	if _, err := s.Profile(ctx, "@nobody:test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing profile: %v", err)
	}
	if err := s.SetDisplayName(ctx, "@nobody:test", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("set missing profile: %v", err)
	}
}

func device(user, id string, tok byte) store.Device {
	return store.Device{UserID: user, DeviceID: id, DisplayName: "dev " + id, TokenHash: bytes.Repeat([]byte{tok}, 32), LastSeenIP: "127.0.0.1", LastSeenTS: 5, CreatedTS: 5}
}

func testDevices(t *testing.T, s store.Store) {
	d := device("@a:test", "DEV1", 1)
	if err := s.UpsertDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeviceByToken(ctx, d.TokenHash)
	if err != nil || got.DeviceID != "DEV1" || got.UserID != "@a:test" || got.DisplayName != "dev DEV1" {
		t.Fatalf("by token = %+v, %v", got, err)
	}
	// Re-login on the same device ID replaces the token and keeps the name.
	d2 := d
	d2.TokenHash = bytes.Repeat([]byte{2}, 32)
	d2.DisplayName = ""
	if err := s.UpsertDevice(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeviceByToken(ctx, d.TokenHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old token still valid: %v", err)
	}
	got, err = s.DeviceByToken(ctx, d2.TokenHash)
	if err != nil || got.DisplayName != "dev DEV1" {
		t.Fatalf("after re-login = %+v, %v", got, err)
	}
	// Another user's device with the same ID is a different device.
	if err := s.UpsertDevice(ctx, device("@b:test", "DEV1", 3)); err != nil {
		t.Fatal(err)
	}
	// Tokens are unique across users.
	if err := s.UpsertDevice(ctx, device("@c:test", "X", 3)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate token hash: %v", err)
	}
	if err := s.SetDeviceName(ctx, "@a:test", "DEV1", "Laptop"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceName(ctx, "@a:test", "NOPE", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rename missing device: %v", err)
	}
	if err := s.TouchDevice(ctx, "@a:test", "DEV1", "10.1.2.3", 99); err != nil {
		t.Fatal(err)
	}
	got, err = s.Device(ctx, "@a:test", "DEV1")
	if err != nil || got.DisplayName != "Laptop" || got.LastSeenIP != "10.1.2.3" || got.LastSeenTS != 99 {
		t.Fatalf("device = %+v, %v", got, err)
	}
	list, err := s.Devices(ctx, "@a:test")
	if err != nil || len(list) != 1 {
		t.Fatalf("devices = %+v, %v", list, err)
	}
	// By many tokens at once: the replaced token (1) and an unknown one
	// (9) are left out, and more hashes than one IN list holds are asked.
	hashes := [][]byte{d.TokenHash, d2.TokenHash, bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{9}, 32)}
	for i := range 450 {
		hashes = append(hashes, bytes.Repeat([]byte{byte(100 + i%100), byte(i / 100)}, 16))
	}
	byTok, err := s.DevicesByTokens(ctx, hashes)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]store.Device{}
	for _, dev := range byTok {
		found[dev.UserID+" "+dev.DeviceID] = dev
	}
	if len(byTok) != 2 || found["@a:test DEV1"].LastSeenIP != "10.1.2.3" || !bytes.Equal(found["@a:test DEV1"].TokenHash, d2.TokenHash) ||
		found["@b:test DEV1"].DisplayName != "dev DEV1" {
		t.Fatalf("devices by tokens = %+v", byTok)
	}
	if byTok, err := s.DevicesByTokens(ctx, nil); err != nil || len(byTok) != 0 {
		t.Fatalf("devices by no tokens = %+v, %v", byTok, err)
	}
}

func testDeleteDevices(t *testing.T, s store.Store) {
	for i, id := range []string{"A", "B", "C", "D"} {
		if err := s.UpsertDevice(ctx, device("@u:test", id, byte(10+i))); err != nil {
			t.Fatal(err)
		}
	}
	del, err := s.DeleteDevices(ctx, "@u:test", []string{"A", "NOPE"}, "")
	if err != nil || len(del) != 1 || del[0] != "A" {
		t.Fatalf("deleted = %v, %v", del, err)
	}
	del, err = s.DeleteDevices(ctx, "@u:test", nil, "C")
	if err != nil || len(del) != 2 {
		t.Fatalf("deleted all but C = %v, %v", del, err)
	}
	list, _ := s.Devices(ctx, "@u:test")
	if len(list) != 1 || list[0].DeviceID != "C" {
		t.Fatalf("left = %+v", list)
	}
	if _, err := s.DeviceByToken(ctx, bytes.Repeat([]byte{10}, 32)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted device's token still valid: %v", err)
	}
}

func testDeactivate(t *testing.T, s store.Store) {
	if err := s.CreateAccount(ctx, account("dave"), "Dave"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertDevice(ctx, device("@dave:test", "D1", 7)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeactivateAccount(ctx, "dave"); err != nil {
		t.Fatal(err)
	}
	a, err := s.Account(ctx, "dave")
	if err != nil || !a.Deactivated || a.PasswordHash != "" {
		t.Fatalf("deactivated account = %+v, %v", a, err)
	}
	if _, err := s.DeviceByToken(ctx, bytes.Repeat([]byte{7}, 32)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token of deactivated account: %v", err)
	}
	if p, _ := s.Profile(ctx, "@dave:test"); p.DisplayName != "" {
		t.Fatalf("profile kept: %+v", p)
	}
	// A deactivated localpart cannot be registered again.
	if err := s.CreateAccount(ctx, account("dave"), ""); !errors.Is(err, store.ErrExists) {
		t.Fatalf("re-register deactivated: %v", err)
	}
	if err := s.SetPasswordHash(ctx, "dave", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("password reset of deactivated account: %v", err)
	}
	if err := s.DeactivateAccount(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deactivate missing: %v", err)
	}
}

func testLoginTokens(t *testing.T, s store.Store) {
	h := bytes.Repeat([]byte{9}, 32)
	if err := s.CreateLoginToken(ctx, h, "@a:test", 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeLoginToken(ctx, h, 101); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	if err := s.CreateLoginToken(ctx, h, "@a:test", 200); err != nil {
		t.Fatal(err)
	}
	u, err := s.ConsumeLoginToken(ctx, h, 150)
	if err != nil || u != "@a:test" {
		t.Fatalf("consume = %q, %v", u, err)
	}
	if _, err := s.ConsumeLoginToken(ctx, h, 150); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second use: %v", err)
	}
}

// testConcurrentWrites checks that many writers at once neither fail with
// "database is locked" nor lose a write.
func testConcurrentWrites(t *testing.T, s store.Store) {
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := fmt.Sprintf("user%d", i)
			if err := s.CreateAccount(ctx, account(name), name); err != nil {
				errs <- err
				return
			}
			errs <- s.UpsertDevice(ctx, device("@"+name+":test", "D", byte(i)))
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if _, err := s.Account(ctx, fmt.Sprintf("user%d", i)); err != nil {
			t.Fatalf("user%d lost: %v", i, err)
		}
	}
}
