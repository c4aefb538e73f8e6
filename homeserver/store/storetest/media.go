package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// testMedia runs the media repository's conformance tests. store.Store
// does not embed store.Media yet, so the backend is asserted to it.
func testMedia(t *testing.T, s store.Store) {
	m, ok := s.(store.Media)
	if !ok {
		t.Fatalf("%T does not implement store.Media", s)
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Media)
	}{
		{"CommitAndRead", testMediaCommit},
		{"CommitRollsBackWhenPlaceFails", testMediaPlaceFails},
		{"Quota", testMediaQuota},
		{"Reservations", testMediaReservations},
		{"SharedBlobs", testMediaSharedBlobs},
		{"Thumbnails", testMediaThumbnails},
		{"Referenced", testMediaReferenced},
		{"Restricted", testMediaRestricted},
		{"Refs", testMediaRefs},
		{"ConcurrentSameContent", testMediaConcurrent},
		{"PurgeRacingUpload", testMediaPurgeRace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each subtest purges everything it made, so they can share
			// one store; start from a clean slate all the same.
			purgeAll(t, m)
			tc.fn(t, m)
		})
	}
}

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func upload(id, user, content string, ts int64) store.MediaMeta {
	return store.MediaMeta{MediaID: id, UserID: user, SHA256: sum(content), Size: int64(len(content)),
		ContentType: "text/plain", UploadName: id + ".txt", CreatedTS: ts, UploadedTS: ts}
}

// placed records the blobs a callback was asked to place or remove.
type placed struct {
	mu  sync.Mutex
	set map[string]int
}

func (p *placed) fn(sha []byte) func() error {
	return func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.set == nil {
			p.set = map[string]int{}
		}
		p.set[string(sha)]++
		return nil
	}
}

func (p *placed) remove(sha []byte) error { return p.fn(sha)() }

func (p *placed) count(sha []byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set[string(sha)]
}

func purgeAll(t *testing.T, m store.Media) store.MediaPurge {
	t.Helper()
	var total store.MediaPurge
	for {
		var rm placed
		r, err := m.PurgeMedia(ctx, 1<<62, 1<<62, 1000, rm.remove)
		if err != nil {
			t.Fatal(err)
		}
		total.Media += r.Media
		total.Blobs += r.Blobs
		total.Bytes += r.Bytes
		if r.Media == 0 {
			return total
		}
	}
}

func testMediaCommit(t *testing.T, m store.Media) {
	var p placed
	u := upload("AAA", "@a:test", "hello", 100)
	if err := m.CommitMedia(ctx, u, 0, p.fn(u.SHA256)); err != nil {
		t.Fatal(err)
	}
	if p.count(u.SHA256) != 1 {
		t.Fatal("place was not called")
	}
	got, err := m.MediaMeta(ctx, "AAA")
	if err != nil {
		t.Fatal(err)
	}
	if got.MediaID != u.MediaID || got.UserID != u.UserID || !bytes.Equal(got.SHA256, u.SHA256) || got.Size != 5 ||
		got.ContentType != "text/plain" || got.UploadName != "AAA.txt" || got.CreatedTS != 100 || got.UploadedTS != 100 ||
		got.Pending() || got.Referenced {
		t.Fatalf("media = %+v, want %+v", got, u)
	}
	if err := m.CommitMedia(ctx, upload("AAA", "@a:test", "other", 101), 0, p.fn(nil)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second commit to the same ID: %v, want ErrExists", err)
	}
	if _, err := m.MediaMeta(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown media: %v", err)
	}
	if n, err := m.MediaUsage(ctx, "@a:test"); err != nil || n != 5 {
		t.Fatalf("usage = %d, %v", n, err)
	}
	if n, err := m.MediaUsage(ctx, "@nobody:test"); err != nil || n != 0 {
		t.Fatalf("usage of nobody = %d, %v", n, err)
	}
	r := purgeAll(t, m)
	if r.Media != 1 || r.Blobs != 1 || r.Bytes != 5 {
		t.Fatalf("purge = %+v", r)
	}
}

func testMediaPlaceFails(t *testing.T, m store.Media) {
	boom := errors.New("disk full")
	u := upload("BBB", "@a:test", "x", 100)
	if err := m.CommitMedia(ctx, u, 0, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("commit = %v, want the place error", err)
	}
	if _, err := m.MediaMeta(ctx, "BBB"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("row kept after failed place: %v", err)
	}
	if r := purgeAll(t, m); r.Blobs != 0 {
		t.Fatalf("blob row kept after failed place: %+v", r)
	}
}

func testMediaQuota(t *testing.T, m store.Media) {
	var p placed
	if err := m.CommitMedia(ctx, upload("Q1", "@q:test", "123456", 1), 10, p.fn(nil)); err != nil {
		t.Fatal(err)
	}
	big := upload("Q2", "@q:test", "abcde", 2)
	called := false
	err := m.CommitMedia(ctx, big, 10, func() error { called = true; return nil })
	if !errors.Is(err, store.ErrQuotaExceeded) || called {
		t.Fatalf("over quota: %v (place called: %v)", err, called)
	}
	if _, err := m.MediaMeta(ctx, "Q2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("over-quota row stored: %v", err)
	}
	// Exactly at the quota is allowed; another user has their own.
	if err := m.CommitMedia(ctx, upload("Q3", "@q:test", "abcd", 3), 10, p.fn(nil)); err != nil {
		t.Fatal(err)
	}
	if err := m.CommitMedia(ctx, upload("Q4", "@r:test", "abcde", 3), 10, p.fn(nil)); err != nil {
		t.Fatal(err)
	}
	purgeAll(t, m)
}

func testMediaReservations(t *testing.T, m store.Media) {
	res := func(id, user string, ts int64) store.MediaMeta {
		return store.MediaMeta{MediaID: id, UserID: user, CreatedTS: ts, ExpiresTS: ts + 1000}
	}
	if err := m.ReserveMedia(ctx, res("R1", "@a:test", 100), 2); err != nil {
		t.Fatal(err)
	}
	if err := m.ReserveMedia(ctx, res("R1", "@b:test", 100), 2); !errors.Is(err, store.ErrExists) {
		t.Fatalf("reserve taken ID: %v", err)
	}
	if err := m.ReserveMedia(ctx, res("R2", "@a:test", 100), 2); err != nil {
		t.Fatal(err)
	}
	if err := m.ReserveMedia(ctx, res("R3", "@a:test", 100), 2); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("third pending reservation: %v, want ErrQuotaExceeded", err)
	}
	// Expired reservations no longer count.
	if err := m.ReserveMedia(ctx, res("R3", "@a:test", 5000), 2); err != nil {
		t.Fatalf("reservation after the others expired: %v", err)
	}
	got, err := m.MediaMeta(ctx, "R1")
	if err != nil || !got.Pending() || got.SHA256 != nil || got.ExpiresTS != 1100 {
		t.Fatalf("pending = %+v, %v", got, err)
	}
	var p placed
	// Another user cannot fill it; nor can anyone after it expired.
	if err := m.CommitMedia(ctx, upload("R1", "@b:test", "data", 200), 0, p.fn(nil)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fill another's reservation: %v", err)
	}
	if err := m.CommitMedia(ctx, upload("R2", "@a:test", "data", 1200), 0, p.fn(nil)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fill an expired reservation: %v", err)
	}
	u := upload("R1", "@a:test", "data", 200)
	u.CreatedTS = 0
	if err := m.CommitMedia(ctx, u, 0, p.fn(u.SHA256)); err != nil {
		t.Fatal(err)
	}
	got, err = m.MediaMeta(ctx, "R1")
	if err != nil || got.Pending() || got.CreatedTS != 100 || got.UploadedTS != 200 || got.ExpiresTS != 0 || got.Size != 4 {
		t.Fatalf("filled = %+v, %v", got, err)
	}
	if err := m.CommitMedia(ctx, u, 0, p.fn(u.SHA256)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("fill twice: %v", err)
	}
	// Expired reservations are purged whatever the age limit.
	r, err := m.PurgeMedia(ctx, 0, 1500, 100, p.remove)
	if err != nil || r.Media != 1 || r.Blobs != 0 {
		t.Fatalf("purge expired = %+v, %v", r, err)
	}
	if _, err := m.MediaMeta(ctx, "R2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired reservation kept: %v", err)
	}
	purgeAll(t, m)
}

func testMediaSharedBlobs(t *testing.T, m store.Media) {
	var p placed
	a := upload("S1", "@a:test", "same bytes", 100)
	b := upload("S2", "@b:test", "same bytes", 200)
	for _, u := range []store.MediaMeta{a, b} {
		if err := m.CommitMedia(ctx, u, 0, p.fn(u.SHA256)); err != nil {
			t.Fatal(err)
		}
	}
	var rm placed
	r, err := m.PurgeMedia(ctx, 150, 0, 100, rm.remove)
	if err != nil || r.Media != 1 || r.Blobs != 0 || rm.count(a.SHA256) != 0 {
		t.Fatalf("purge of one of two sharing a blob = %+v, %v (removed %d)", r, err, rm.count(a.SHA256))
	}
	if _, err := m.MediaMeta(ctx, "S2"); err != nil {
		t.Fatal(err)
	}
	r, err = m.PurgeMedia(ctx, 250, 0, 100, rm.remove)
	if err != nil || r.Media != 1 || r.Blobs != 1 || r.Bytes != 10 || rm.count(a.SHA256) != 1 {
		t.Fatalf("purge of the last = %+v, %v", r, err)
	}
	// A remove failure rolls the purge back.
	if err := m.CommitMedia(ctx, a, 0, p.fn(a.SHA256)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.PurgeMedia(ctx, 1<<62, 0, 100, func([]byte) error { return errors.New("EIO") }); err == nil {
		t.Fatal("purge with a failing remove succeeded")
	}
	if _, err := m.MediaMeta(ctx, "S1"); err != nil {
		t.Fatalf("media lost after a failed purge: %v", err)
	}
	purgeAll(t, m)
}

func testMediaThumbnails(t *testing.T, m store.Media) {
	var p placed
	src := upload("T1", "@a:test", "an image", 100)
	if err := m.CommitMedia(ctx, src, 0, p.fn(src.SHA256)); err != nil {
		t.Fatal(err)
	}
	th := func(w, h int, method, content string) store.MediaThumbnail {
		return store.MediaThumbnail{SourceSHA256: src.SHA256, Width: w, Height: h, Method: method,
			ContentType: "image/png", SHA256: sum(content), Size: int64(len(content)), CreatedTS: 100}
	}
	t1, t2 := th(96, 96, "crop", "thumb-96"), th(32, 32, "crop", "thumb-32")
	for _, x := range []store.MediaThumbnail{t1, t2} {
		if err := m.AddMediaThumbnail(ctx, x, p.fn(x.SHA256)); err != nil {
			t.Fatal(err)
		}
	}
	// Adding the same size again keeps the first and does not place.
	again := th(96, 96, "crop", "thumb-96-other")
	if err := m.AddMediaThumbnail(ctx, again, p.fn(again.SHA256)); err != nil {
		t.Fatal(err)
	}
	if p.count(again.SHA256) != 0 {
		t.Fatal("a duplicate thumbnail was placed")
	}
	list, err := m.MediaThumbnails(ctx, src.SHA256)
	if err != nil || len(list) != 2 || list[0].Width != 32 || list[1].Width != 96 || !bytes.Equal(list[1].SHA256, t1.SHA256) {
		t.Fatalf("thumbnails = %+v, %v", list, err)
	}
	if list[0].Height != 32 || list[0].Method != "crop" || list[0].ContentType != "image/png" || list[0].Size != 8 || list[0].CreatedTS != 100 {
		t.Fatalf("thumbnail row = %+v", list[0])
	}
	// A thumbnail of content nobody has is refused.
	orphan := th(32, 32, "crop", "x")
	orphan.SourceSHA256 = sum("never uploaded")
	if err := m.AddMediaThumbnail(ctx, orphan, p.fn(nil)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("thumbnail of missing content: %v", err)
	}
	// Purging the media removes its blob and both thumbnails' blobs.
	var rm placed
	r, err := m.PurgeMedia(ctx, 1<<62, 0, 100, rm.remove)
	if err != nil || r.Media != 1 || r.Blobs != 3 || r.Bytes != int64(len("an image")+len("thumb-96")+len("thumb-32")) {
		t.Fatalf("purge = %+v, %v", r, err)
	}
	for _, sha := range [][]byte{src.SHA256, t1.SHA256, t2.SHA256} {
		if rm.count(sha) != 1 {
			t.Fatalf("blob %x removed %d times", sha, rm.count(sha))
		}
	}
	if list, _ := m.MediaThumbnails(ctx, src.SHA256); len(list) != 0 {
		t.Fatalf("thumbnails left: %+v", list)
	}

	// A thumbnail whose bytes equal an uploaded file is kept while that
	// upload exists.
	src2 := upload("T2", "@a:test", "image two", 100)
	same := upload("T3", "@a:test", "tiny thumb", 100)
	for _, u := range []store.MediaMeta{src2, same} {
		if err := m.CommitMedia(ctx, u, 0, p.fn(u.SHA256)); err != nil {
			t.Fatal(err)
		}
	}
	tt := store.MediaThumbnail{SourceSHA256: src2.SHA256, Width: 32, Height: 32, Method: "crop", ContentType: "image/png",
		SHA256: same.SHA256, Size: same.Size, CreatedTS: 100}
	if err := m.AddMediaThumbnail(ctx, tt, p.fn(tt.SHA256)); err != nil {
		t.Fatal(err)
	}
	if err := m.MarkMediaReferenced(ctx, []string{"T3"}); err != nil {
		t.Fatal(err)
	}
	var rm2 placed
	if _, err := m.PurgeMedia(ctx, 1<<62, 0, 100, rm2.remove); err != nil {
		t.Fatal(err)
	}
	if rm2.count(src2.SHA256) != 1 || rm2.count(same.SHA256) != 0 {
		t.Fatal("a thumbnail blob still used by a media ID was removed, or the source was kept")
	}
}

func testMediaReferenced(t *testing.T, m store.Media) {
	var p placed
	for i, id := range []string{"F1", "F2", "F3"} {
		u := upload(id, "@a:test", "content "+id, int64(100+i))
		if err := m.CommitMedia(ctx, u, 0, p.fn(u.SHA256)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.MarkMediaReferenced(ctx, []string{"F1", "F3", "unknown"}); err != nil {
		t.Fatal(err)
	}
	var rm placed
	r, err := m.PurgeMedia(ctx, 1<<62, 1<<62, 100, rm.remove)
	if err != nil || r.Media != 1 {
		t.Fatalf("purge = %+v, %v", r, err)
	}
	var left []string
	for _, id := range []string{"F1", "F2", "F3"} {
		if got, err := m.MediaMeta(ctx, id); err == nil {
			if !got.Referenced {
				t.Fatalf("%s kept but not referenced", id)
			}
			left = append(left, id)
		}
	}
	sort.Strings(left)
	if fmt.Sprint(left) != "[F1 F3]" {
		t.Fatalf("left after purge: %v", left)
	}
}

// testMediaConcurrent uploads the same content under many IDs at once, as
// a class forwarding one file does.
func testMediaConcurrent(t *testing.T, m store.Media) {
	const n = 32
	var wg sync.WaitGroup
	var p placed
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			u := upload(fmt.Sprintf("C%d", i), fmt.Sprintf("@u%d:test", i%4), "the slides", int64(100+i))
			errs <- m.CommitMedia(ctx, u, 1000, p.fn(u.SHA256))
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	r := purgeAll(t, m)
	if r.Media != n || r.Blobs != 1 {
		t.Fatalf("purge = %+v, want %d media sharing 1 blob", r, n)
	}
}

// blobSet stands in for the blob files: place puts, remove deletes.
type blobSet struct {
	mu  sync.Mutex
	set map[string]bool
}

func (b *blobSet) place(sha []byte) func() error {
	return func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.set[string(sha)] = true
		return nil
	}
}

func (b *blobSet) remove(sha []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.set, string(sha))
	return nil
}

func (b *blobSet) has(sha []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.set[string(sha)]
}

// testMediaPurgeRace purges old media while the same content is uploaded
// again: the new upload must never be left pointing at a removed blob.
func testMediaPurgeRace(t *testing.T, m store.Media) {
	blobs := &blobSet{set: map[string]bool{}}
	for i := 0; i < 30; i++ {
		content := fmt.Sprintf("the same file, round %d", i)
		old := upload(fmt.Sprintf("old%d", i), "@a:test", content, 1)
		if err := m.CommitMedia(ctx, old, 0, blobs.place(old.SHA256)); err != nil {
			t.Fatal(err)
		}
		fresh := upload(fmt.Sprintf("new%d", i), "@b:test", content, 100)
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := m.PurgeMedia(ctx, 10, 0, 100, blobs.remove)
			errs <- err
		}()
		go func() {
			defer wg.Done()
			errs <- m.CommitMedia(ctx, fresh, 0, blobs.place(fresh.SHA256))
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := m.MediaMeta(ctx, fresh.MediaID); err != nil {
			t.Fatal(err)
		}
		if !blobs.has(fresh.SHA256) {
			t.Fatalf("round %d: the purge removed the blob of an upload that committed meanwhile", i)
		}
	}
	purgeAll(t, m)
}

// testMediaRestricted: the "authenticated media" flag is kept by a direct
// upload and by the filling of a reservation, and defaults to off (media
// from before the freeze).
func testMediaRestricted(t *testing.T, m store.Media) {
	var p placed
	old := upload("R1", "@a:test", "before the freeze", 100)
	fresh := upload("R2", "@a:test", "after the freeze", 101)
	fresh.Restricted = true
	for _, u := range []store.MediaMeta{old, fresh} {
		if err := m.CommitMedia(ctx, u, 0, p.fn(u.SHA256)); err != nil {
			t.Fatal(err)
		}
	}
	res := store.MediaMeta{MediaID: "R3", UserID: "@a:test", CreatedTS: 102, ExpiresTS: 1 << 40, Restricted: true}
	if err := m.ReserveMedia(ctx, res, 0); err != nil {
		t.Fatal(err)
	}
	fill := upload("R3", "@a:test", "async", 103)
	if err := m.CommitMedia(ctx, fill, 0, p.fn(fill.SHA256)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"R1": false, "R2": true, "R3": true} {
		got, err := m.MediaMeta(ctx, id)
		if err != nil || got.Restricted != want {
			t.Fatalf("%s: restricted %v (%v), want %v", id, got.Restricted, err, want)
		}
	}
	purgeAll(t, m)
}

// testMediaRefs records which events reference which media.
func testMediaRefs(t *testing.T, m store.Media) {
	a, b := "mxc://test/AAAA", "mxc://test/BBBB"
	refs := []store.MediaRef{
		{MXC: a, RoomID: "!r2:test", EventID: "$e3"},
		{MXC: a, RoomID: "!r1:test", EventID: "$e1"},
		{MXC: b, RoomID: "!r1:test", EventID: "$e1"},
		{MXC: a, RoomID: "!r1:test", EventID: "$e2"},
	}
	if err := m.AddMediaRefs(ctx, refs); err != nil {
		t.Fatal(err)
	}
	// Again (an event carrying the same URI twice, or a retry): no error.
	if err := m.AddMediaRefs(ctx, refs[:2]); err != nil {
		t.Fatalf("adding a reference again: %v", err)
	}
	if err := m.AddMediaRefs(ctx, nil); err != nil {
		t.Fatal(err)
	}
	got, err := m.MediaRefs(ctx, a, 10)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint([]store.MediaRef{refs[1], refs[3], refs[0]}) {
		t.Fatalf("refs of %s = %v", a, got)
	}
	if got, err := m.MediaRefs(ctx, a, 2); err != nil || len(got) != 2 {
		t.Fatalf("limit 2: %v, %v", got, err)
	}
	if got, err := m.MediaRefs(ctx, b, 10); err != nil || len(got) != 1 || got[0] != refs[2] {
		t.Fatalf("refs of %s = %v, %v", b, got, err)
	}
	if got, err := m.MediaRefs(ctx, "mxc://test/none", 10); err != nil || len(got) != 0 {
		t.Fatalf("refs of unreferenced media = %v, %v", got, err)
	}
}

// MediaRefsBackfill checks migration 0101 of a backend: events stored
// before it (by exec, in a database migrated up to 0100) have their media
// references indexed once upgrade has run the rest of the migrations.
func MediaRefsBackfill(t *testing.T, exec func(query string, args ...any) error, upgrade func() store.Store) {
	t.Helper()
	evs := []struct{ id, room, json string }{
		{"$img", "!a:test", `{"type":"m.room.message","content":{"msgtype":"m.image","url":"mxc://test/IMG","info":{"thumbnail_url":"mxc://test/THUMB"}}}`},
		{"$enc", "!a:test", `{"type":"m.room.message","content":{"msgtype":"m.file","file":{"url":"mxc://test/ENC"},"info":{"thumbnail_file":{"url":"mxc://test/ENCTHUMB"}}}}`},
		{"$avatar", "!b:test", `{"type":"m.room.member","state_key":"@a:test","content":{"membership":"join","avatar_url":"mxc://test/IMG"}}`},
		{"$text", "!b:test", `{"type":"m.room.message","content":{"msgtype":"m.text","body":"mxc://test/NOT","url":5}}`},
		{"$odd", "!b:test", `{"type":"m.room.message","content":{"url":{"nested":"mxc://test/NOT"},"info":"x"}}`},
	}
	for i, e := range evs {
		if err := exec(`INSERT INTO events (stream_pos, event_id, room_id, type, sender, json) VALUES ($1, $2, $3, $4, $5, $6)`,
			int64(i+1), e.id, e.room, "m.room.message", "@a:test", e.json); err != nil {
			t.Fatal(err)
		}
	}
	s := upgrade()
	m := s.(store.Media)
	for mxc, want := range map[string]string{
		"mxc://test/IMG":      "[{mxc://test/IMG !a:test $img} {mxc://test/IMG !b:test $avatar}]",
		"mxc://test/THUMB":    "[{mxc://test/THUMB !a:test $img}]",
		"mxc://test/ENC":      "[{mxc://test/ENC !a:test $enc}]",
		"mxc://test/ENCTHUMB": "[{mxc://test/ENCTHUMB !a:test $enc}]",
		"mxc://test/NOT":      "[]",
	} {
		got, err := m.MediaRefs(ctx, mxc, 10)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != want {
			t.Errorf("refs of %s after the upgrade: %v, want %s", mxc, got, want)
		}
	}
}
