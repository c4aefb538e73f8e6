package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func backupKey(room, session string, fmi, fc int64, verified bool) store.BackupSession {
	return store.BackupSession{
		RoomID: room, SessionID: session, FirstMessageIndex: fmi, ForwardedCount: fc, IsVerified: verified,
		SessionData: fmt.Appendf(nil, `{"ciphertext":"%s/%s/%d/%d/%t"}`, room, session, fmi, fc, verified),
	}
}

func mustBackup(t *testing.T, s store.Store, user string, version int64) store.KeyBackup {
	t.Helper()
	b, err := s.KeyBackup(ctx, user, version)
	if err != nil {
		t.Fatalf("KeyBackup(%s, %d): %v", user, version, err)
	}
	return b
}

func mustPutKeys(t *testing.T, s store.Store, user string, version int64, keys ...store.BackupSession) store.KeyBackup {
	t.Helper()
	b, err := s.PutBackupKeys(ctx, user, version, keys)
	if err != nil {
		t.Fatalf("PutBackupKeys(%s, %d): %v", user, version, err)
	}
	return b
}

func backupKeys(t *testing.T, s store.Store, user string, version int64, f store.BackupKeysFilter) []store.BackupSession {
	t.Helper()
	keys, err := s.BackupKeys(ctx, user, version, f)
	if err != nil {
		t.Fatalf("BackupKeys(%s, %d, %+v): %v", user, version, f, err)
	}
	return keys
}

func sameKey(a, b store.BackupSession) bool {
	return a.RoomID == b.RoomID && a.SessionID == b.SessionID && a.FirstMessageIndex == b.FirstMessageIndex &&
		a.ForwardedCount == b.ForwardedCount && a.IsVerified == b.IsVerified && string(a.SessionData) == string(b.SessionData)
}

// testKeyBackupVersions: numbering per user, never reused; latest; update;
// delete (twice); the errors of versions that do not exist.
func testKeyBackupVersions(t *testing.T, s store.Store) {
	const alice, bob = "@alice:test", "@bob:test"
	if _, err := s.LatestKeyBackup(ctx, alice); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("latest of no backup: %v", err)
	}
	if err := s.DeleteKeyBackup(ctx, alice, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of no backup: %v", err)
	}
	if err := s.UpdateKeyBackupAuthData(ctx, alice, 1, []byte(`{}`)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of no backup: %v", err)
	}
	v1, err := s.CreateKeyBackup(ctx, alice, "m.megolm_backup.v1.curve25519-aes-sha2", []byte(`{"public_key":"a1"}`))
	if err != nil || v1 != 1 {
		t.Fatalf("create = %d, %v", v1, err)
	}
	if v, err := s.CreateKeyBackup(ctx, bob, "m.megolm_backup.v1.curve25519-aes-sha2", []byte(`{"public_key":"b1"}`)); err != nil || v != 1 {
		t.Fatalf("bob's first version = %d, %v (versions are per user)", v, err)
	}
	b := mustBackup(t, s, alice, 1)
	want := store.KeyBackup{UserID: alice, Version: 1, Algorithm: "m.megolm_backup.v1.curve25519-aes-sha2", AuthData: []byte(`{"public_key":"a1"}`)}
	if b.UserID != want.UserID || b.Version != 1 || b.Algorithm != want.Algorithm || string(b.AuthData) != string(want.AuthData) || b.Count != 0 {
		t.Fatalf("backup = %+v, want %+v", b, want)
	}
	v2, _ := s.CreateKeyBackup(ctx, alice, "other", []byte(`{"public_key":"a2"}`))
	if v2 != 2 {
		t.Fatalf("second version = %d", v2)
	}
	if l, err := s.LatestKeyBackup(ctx, alice); err != nil || l.Version != 2 || l.Algorithm != "other" {
		t.Fatalf("latest = %+v, %v", l, err)
	}
	if err := s.UpdateKeyBackupAuthData(ctx, alice, 1, []byte(`{"public_key":"a1","signatures":{}}`)); err != nil {
		t.Fatal(err)
	}
	if b := mustBackup(t, s, alice, 1); string(b.AuthData) != `{"public_key":"a1","signatures":{}}` {
		t.Fatalf("auth_data after update = %s", b.AuthData)
	}
	if b := mustBackup(t, s, bob, 1); string(b.AuthData) != `{"public_key":"b1"}` {
		t.Fatalf("bob's auth_data changed by alice's update: %s", b.AuthData)
	}
	if err := s.UpdateKeyBackupAuthData(ctx, alice, 3, []byte(`{}`)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of unknown version: %v", err)
	}

	// Deleting the latest makes the one before it current again; a deleted
	// version is gone for reads and updates, deleting it again succeeds,
	// and its number is not handed out again.
	if err := s.DeleteKeyBackup(ctx, alice, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKeyBackup(ctx, alice, 2); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.KeyBackup(ctx, alice, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted version read: %v", err)
	}
	if err := s.UpdateKeyBackupAuthData(ctx, alice, 2, []byte(`{}`)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted version updated: %v", err)
	}
	if l, err := s.LatestKeyBackup(ctx, alice); err != nil || l.Version != 1 {
		t.Fatalf("latest after deleting 2 = %+v, %v", l, err)
	}
	if err := s.DeleteKeyBackup(ctx, alice, 9); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of a version never made: %v", err)
	}
	if v, _ := s.CreateKeyBackup(ctx, alice, "x", []byte(`{}`)); v != 3 {
		t.Fatalf("version after a deleted 2 = %d, want 3", v)
	}
	for _, v := range []int64{1, 3} {
		if err := s.DeleteKeyBackup(ctx, alice, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.LatestKeyBackup(ctx, alice); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("latest with every version deleted: %v", err)
	}
	if _, err := s.LatestKeyBackup(ctx, bob); err != nil {
		t.Fatalf("bob's backup gone with alice's: %v", err)
	}
}

// testKeyBackupReplace runs the spec's replacement rule through the store:
// each case stores a key, uploads another for the same session, and checks
// which one is kept and whether etag moved.
func testKeyBackupReplace(t *testing.T, s store.Store) {
	const user, room = "@alice:test", "!room:test"
	v, err := s.CreateKeyBackup(ctx, user, "m.megolm_backup.v1", []byte(`{"foo":"bar"}`))
	if err != nil {
		t.Fatal(err)
	}
	type meta struct {
		verified bool
		fmi, fc  int64
	}
	cases := []struct {
		name      string
		stored, n meta
		replaced  bool
	}{
		{"verified beats unverified, even with higher indexes", meta{false, 1, 0}, meta{true, 9, 9}, true},
		{"unverified never replaces verified", meta{true, 9, 9}, meta{false, 0, 0}, false},
		{"lower first_message_index wins", meta{false, 10, 5}, meta{false, 9, 7}, true},
		{"higher first_message_index loses", meta{false, 10, 5}, meta{false, 11, 0}, false},
		{"verified: lower first_message_index wins", meta{true, 10, 5}, meta{true, 3, 8}, true},
		{"verified: higher first_message_index loses", meta{true, 10, 5}, meta{true, 11, 5}, false},
		{"same index, lower forwarded_count wins", meta{false, 10, 5}, meta{false, 10, 4}, true},
		{"same index, higher forwarded_count loses", meta{false, 10, 5}, meta{false, 10, 6}, false},
		{"verified, same index, lower forwarded_count wins", meta{true, 10, 5}, meta{true, 10, 0}, true},
		{"verified, same index, higher forwarded_count loses", meta{true, 10, 5}, meta{true, 10, 6}, false},
		{"a tie keeps the stored key", meta{false, 10, 5}, meta{false, 10, 5}, false},
		{"a verified tie keeps the stored key", meta{true, 0, 0}, meta{true, 0, 0}, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			session := fmt.Sprintf("s%d", i)
			stored := backupKey(room, session, tc.stored.fmi, tc.stored.fc, tc.stored.verified)
			stored.SessionData = []byte(`{"which":"stored"}`)
			before := mustPutKeys(t, s, user, v, stored)
			upload := backupKey(room, session, tc.n.fmi, tc.n.fc, tc.n.verified)
			upload.SessionData = []byte(`{"which":"new"}`)
			if upload.Replaces(stored) != tc.replaced {
				t.Fatalf("Replaces = %v, want %v", !tc.replaced, tc.replaced)
			}
			after := mustPutKeys(t, s, user, v, upload)
			got := backupKeys(t, s, user, v, store.BackupKeysFilter{RoomID: room, SessionID: session})
			want := stored
			if tc.replaced {
				want = upload
			}
			if len(got) != 1 || !sameKey(got[0], want) {
				t.Fatalf("kept %+v, want %+v", got, want)
			}
			if after.Count != before.Count {
				t.Fatalf("count %d -> %d on a second upload of one session", before.Count, after.Count)
			}
			if moved := after.ETag != before.ETag; moved != tc.replaced {
				t.Fatalf("etag %d -> %d, replaced = %v", before.ETag, after.ETag, tc.replaced)
			}
		})
	}

	// Two uploads of one session in one call: the better one is kept.
	worse, better := backupKey(room, "dup", 5, 0, false), backupKey(room, "dup", 2, 0, false)
	mustPutKeys(t, s, user, v, worse, better)
	if got := backupKeys(t, s, user, v, store.BackupKeysFilter{RoomID: room, SessionID: "dup"}); len(got) != 1 || !sameKey(got[0], better) {
		t.Fatalf("duplicate upload kept %+v", got)
	}
}

// testKeyBackupKeys: etag and count through puts and deletes, filtered
// reads, the latest-version rule, isolation between users, and many keys
// in one call.
func testKeyBackupKeys(t *testing.T, s store.Store) {
	const alice, bob = "@alice:test", "@bob:test"
	if _, err := s.PutBackupKeys(ctx, alice, 1, []store.BackupSession{backupKey("!a:test", "s", 0, 0, false)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("put without a backup: %v", err)
	}
	v1, _ := s.CreateKeyBackup(ctx, alice, "alg", []byte(`{}`))
	bv1, _ := s.CreateKeyBackup(ctx, bob, "alg", []byte(`{}`))
	b0 := mustBackup(t, s, alice, v1)

	a1, a2, b1 := backupKey("!a:test", "s1", 0, 0, false), backupKey("!a:test", "s2", 3, 1, true), backupKey("!b:test", "s1", 7, 0, false)
	b := mustPutKeys(t, s, alice, v1, a1, a2, b1)
	if b.Count != 3 || b.ETag == b0.ETag {
		t.Fatalf("after 3 keys: %+v (before %+v)", b, b0)
	}
	if got := mustBackup(t, s, alice, v1); got.Count != 3 || got.ETag != b.ETag {
		t.Fatalf("stored backup = %+v, put answered %+v", got, b)
	}
	// The same keys again change nothing.
	if again := mustPutKeys(t, s, alice, v1, a1, a2, b1); again.ETag != b.ETag || again.Count != 3 {
		t.Fatalf("re-upload moved etag/count: %+v -> %+v", b, again)
	}
	all := backupKeys(t, s, alice, v1, store.BackupKeysFilter{})
	if len(all) != 3 || !sameKey(all[0], a1) || !sameKey(all[1], a2) || !sameKey(all[2], b1) {
		t.Fatalf("all keys = %+v", all)
	}
	if room := backupKeys(t, s, alice, v1, store.BackupKeysFilter{RoomID: "!a:test"}); len(room) != 2 {
		t.Fatalf("room keys = %+v", room)
	}
	if one := backupKeys(t, s, alice, v1, store.BackupKeysFilter{RoomID: "!b:test", SessionID: "s1"}); len(one) != 1 || !sameKey(one[0], b1) {
		t.Fatalf("one key = %+v", one)
	}
	if none := backupKeys(t, s, alice, v1, store.BackupKeysFilter{RoomID: "!b:test", SessionID: "nope"}); len(none) != 0 {
		t.Fatalf("missing session = %+v", none)
	}
	if none := backupKeys(t, s, alice, v1, store.BackupKeysFilter{RoomID: "!nope:test"}); none == nil || len(none) != 0 {
		t.Fatalf("missing room = %#v, want an empty list", none)
	}

	// Bob's backup with the same version number is his own.
	if got := backupKeys(t, s, bob, bv1, store.BackupKeysFilter{}); len(got) != 0 {
		t.Fatalf("bob sees alice's keys: %+v", got)
	}
	if d, err := s.DeleteBackupKeys(ctx, bob, bv1, store.BackupKeysFilter{}); err != nil || d.Count != 0 {
		t.Fatalf("bob's delete = %+v, %v", d, err)
	}
	if got := mustBackup(t, s, alice, v1); got.Count != 3 {
		t.Fatalf("bob's delete touched alice's backup: %+v", got)
	}
	if _, err := s.BackupKeys(ctx, bob, 2, store.BackupKeysFilter{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob reads a version he does not have: %v", err)
	}

	// Only the latest version takes keys; older ones stay readable and
	// their keys deletable.
	v2, _ := s.CreateKeyBackup(ctx, alice, "alg", []byte(`{}`))
	_, err := s.PutBackupKeys(ctx, alice, v1, []store.BackupSession{backupKey("!c:test", "s", 0, 0, false)})
	var wrong *store.WrongBackupVersion
	if !errors.As(err, &wrong) || wrong.Current != v2 || !errors.Is(err, store.ErrWrongBackupVersion) {
		t.Fatalf("put to an older version: %v", err)
	}
	if got := mustBackup(t, s, alice, v1); got.Count != 3 || got.ETag != b.ETag {
		t.Fatalf("refused put changed the backup: %+v", got)
	}
	if _, err := s.PutBackupKeys(ctx, alice, v2+1, []store.BackupSession{a1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("put to a version never made: %v", err)
	}
	d, err := s.DeleteBackupKeys(ctx, alice, v1, store.BackupKeysFilter{RoomID: "!a:test", SessionID: "s2"})
	if err != nil || d.Count != 2 || d.ETag == b.ETag {
		t.Fatalf("delete one key = %+v, %v", d, err)
	}
	if d2, _ := s.DeleteBackupKeys(ctx, alice, v1, store.BackupKeysFilter{RoomID: "!a:test", SessionID: "s2"}); d2.ETag != d.ETag || d2.Count != 2 {
		t.Fatalf("deleting nothing moved etag/count: %+v -> %+v", d, d2)
	}
	if d3, _ := s.DeleteBackupKeys(ctx, alice, v1, store.BackupKeysFilter{RoomID: "!a:test"}); d3.Count != 1 {
		t.Fatalf("delete room = %+v", d3)
	}
	if d4, _ := s.DeleteBackupKeys(ctx, alice, v1, store.BackupKeysFilter{}); d4.Count != 0 {
		t.Fatalf("delete all = %+v", d4)
	}

	// Deleting a version deletes its keys; writes to it are refused.
	mustPutKeys(t, s, alice, v2, a1, b1)
	if err := s.DeleteKeyBackup(ctx, alice, v2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BackupKeys(ctx, alice, v2, store.BackupKeysFilter{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("keys of a deleted version: %v", err)
	}
	if _, err := s.DeleteBackupKeys(ctx, alice, v2, store.BackupKeysFilter{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete keys of a deleted version: %v", err)
	}
	if _, err := s.PutBackupKeys(ctx, alice, v2, []store.BackupSession{a1}); !errors.As(err, &wrong) || wrong.Current != v1 {
		t.Fatalf("put to a deleted version: %v", err)
	}
	v3, _ := s.CreateKeyBackup(ctx, alice, "alg", []byte(`{}`))
	if got := mustBackup(t, s, alice, v3); got.Count != 0 {
		t.Fatalf("new version inherits keys: %+v", got)
	}

	// Many keys in one call, over several statements; then a better copy of
	// half of them.
	var many []store.BackupSession
	for i := range 250 {
		many = append(many, backupKey(fmt.Sprintf("!r%d:test", i%2), fmt.Sprintf("m%03d", i), 10, 0, false))
	}
	mb := mustPutKeys(t, s, alice, v3, many...)
	if mb.Count != 250 {
		t.Fatalf("250 keys: count %d", mb.Count)
	}
	for i := range many {
		if i%2 == 0 {
			many[i] = backupKey(many[i].RoomID, many[i].SessionID, 2, 0, false)
		}
	}
	mb2 := mustPutKeys(t, s, alice, v3, many...)
	if mb2.Count != 250 || mb2.ETag == mb.ETag {
		t.Fatalf("better copies: %+v -> %+v", mb, mb2)
	}
	got := backupKeys(t, s, alice, v3, store.BackupKeysFilter{})
	if len(got) != 250 {
		t.Fatalf("read %d keys", len(got))
	}
	for _, k := range got {
		var n int
		fmt.Sscanf(k.SessionID, "m%d", &n)
		if want := int64(10 - 8*((n+1)%2)); k.FirstMessageIndex != want {
			t.Fatalf("%s: first_message_index %d, want %d", k.SessionID, k.FirstMessageIndex, want)
		}
	}
}

// testKeyBackupConcurrent: uploads racing each other and the creation of a
// new version keep count equal to the keys stored.
func testKeyBackupConcurrent(t *testing.T, s store.Store) {
	const user = "@alice:test"
	v, _ := s.CreateKeyBackup(ctx, user, "alg", []byte(`{}`))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				// Workers overlap on half their sessions.
				k := backupKey("!r:test", fmt.Sprintf("w%d-%d", w%4, i), int64(w), 0, false)
				if _, err := s.PutBackupKeys(ctx, user, v, []store.BackupSession{k}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b := mustBackup(t, s, user, v)
	keys := backupKeys(t, s, user, v, store.BackupKeysFilter{})
	if b.Count != 40 || len(keys) != 40 {
		t.Fatalf("count %d, %d keys stored, want 40", b.Count, len(keys))
	}
	for _, k := range keys {
		var w int
		fmt.Sscanf(k.SessionID, "w%d-", &w)
		if k.FirstMessageIndex != int64(w) {
			t.Fatalf("%s kept first_message_index %d, want the lower %d", k.SessionID, k.FirstMessageIndex, w)
		}
	}
}

// testKeyBackupDeactivate: deactivating an account deletes its backups and
// their keys, and nobody else's.
func testKeyBackupDeactivate(t *testing.T, s store.Store) {
	for _, name := range []string{"erin", "frank"} {
		if err := s.CreateAccount(ctx, account(name), ""); err != nil {
			t.Fatal(err)
		}
	}
	const erin, frank = "@erin:test", "@frank:test"
	var versions []int64
	for range 2 {
		v, err := s.CreateKeyBackup(ctx, erin, "alg", []byte(`{"public_key":"e"}`))
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	mustPutKeys(t, s, erin, versions[1], backupKey("!r:test", "s", 0, 0, true))
	fv, _ := s.CreateKeyBackup(ctx, frank, "alg", []byte(`{}`))
	mustPutKeys(t, s, frank, fv, backupKey("!r:test", "s", 0, 0, true))
	if err := s.DeactivateAccount(ctx, "erin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LatestKeyBackup(ctx, erin); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("backup of a deactivated account: %v", err)
	}
	for _, v := range versions {
		if _, err := s.BackupKeys(ctx, erin, v, store.BackupKeysFilter{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("keys of version %d of a deactivated account: %v", v, err)
		}
	}
	if got := backupKeys(t, s, frank, fv, store.BackupKeysFilter{}); len(got) != 1 {
		t.Fatalf("frank's backup after erin's deactivation: %+v", got)
	}
}
