package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

// storeLegacy records content as media uploaded before the authenticated
// media freeze (as a database from an older Salon holds it) and returns
// its ID.
func (e *env) storeLegacy(id string, data []byte) string {
	e.t.Helper()
	sum := sha256.Sum256(data)
	w, err := e.repo.blobs.Create(bg)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = w.Abort() }()
	if _, err := w.Write(data); err != nil {
		e.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		e.t.Fatal(err)
	}
	ts := time.Now().Add(-48 * time.Hour).UnixMilli()
	m := store.MediaMeta{MediaID: id, UserID: "@alice:test", SHA256: sum[:], Size: int64(len(data)),
		ContentType: "image/png", CreatedTS: ts, UploadedTS: ts}
	if err := e.st.CommitMedia(bg, m, 0, func() error { return w.Commit(sum) }); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestAuthenticatedMediaFreeze: media uploaded while the freeze is on (the
// default) is served only through /_matrix/client/v1/media; the legacy
// unauthenticated endpoints answer 404 M_NOT_FOUND for it, as Synapse
// does, and keep serving media uploaded before.
func TestAuthenticatedMediaFreeze(t *testing.T) {
	if !Defaults().AuthenticatedMedia {
		t.Fatal("the freeze must be on by default")
	}
	e := newEnv(t)
	img := pngBytes(t, 400, 300)
	fresh := e.upload(alice, "image/png", "new.png", img)
	async, _ := e.create(alice)
	mustJSON(t, e.req("PUT", putPath(async), alice, bytes.NewReader(img), "Content-Type", "image/png"))
	old := e.storeLegacy("OldMediaFromBefore", img)

	for _, id := range []string{fresh, async} {
		for _, path := range []string{
			"/_matrix/media/v3/download/test/" + id,
			"/_matrix/media/v3/download/test/" + id + "/x.png",
			"/_matrix/media/v3/thumbnail/test/" + id + "?width=32&height=32&method=crop",
		} {
			mustErr(t, e.req("GET", path, "", nil), 404, "M_NOT_FOUND")
			// A token changes nothing there: the legacy path is the
			// unauthenticated one.
			mustErr(t, e.req("GET", path, alice, nil), 404, "M_NOT_FOUND")
		}
		for _, path := range []string{download(id), thumbPath(id, 32, 32, "crop")} {
			if resp := e.req("GET", path, bob, nil); resp.StatusCode != 200 {
				t.Fatalf("authenticated %s = %d", path, resp.StatusCode)
			}
		}
	}
	// Media from before the freeze: still served without a token.
	resp := e.req("GET", "/_matrix/media/v3/download/test/"+old, "", nil)
	if got := readAll(t, resp); resp.StatusCode != 200 || !bytes.Equal(got, img) ||
		resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("legacy download of old media = %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if resp := e.req("GET", "/_matrix/media/v3/thumbnail/test/"+old+"?width=32&height=32&method=crop", "", nil); resp.StatusCode != 200 {
		t.Fatalf("legacy thumbnail of old media = %d", resp.StatusCode)
	}
	if resp := e.req("GET", download(old), bob, nil); resp.StatusCode != 200 {
		t.Fatalf("authenticated download of old media = %d", resp.StatusCode)
	}

	// With the freeze off, new uploads are served on both paths.
	off := newEnv(t, func(c *Config) { c.AuthenticatedMedia = false })
	id := off.upload(alice, "image/png", "", img)
	if resp := off.req("GET", "/_matrix/media/v3/download/test/"+id, "", nil); resp.StatusCode != 200 {
		t.Fatalf("legacy download without the freeze = %d", resp.StatusCode)
	}
}

// fakeEvents lets a user see the events listed for them, with content.
type fakeEvents map[string]map[string]string // user → event ID → content

func (f fakeEvents) VisibleEvent(_ context.Context, user, _, eventID string) (json.RawMessage, bool, error) {
	c, ok := f[user][eventID]
	return json.RawMessage(c), ok, nil
}

// TestRestrictToRooms checks the rules of media.restrict_to_rooms against
// a stand-in for the rooms (the real ones: cmd/salon
// TestMediaRestrictToRooms).
func TestRestrictToRooms(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RestrictToRooms = true })
	events := e.events
	posted := e.upload(alice, "image/png", "", pngBytes(t, 40, 40))
	unposted := e.upload(alice, "text/plain", "", []byte("draft"))
	old := e.storeLegacy("OldPostedBeforeTheFreeze", pngBytes(t, 41, 41))
	content := func(id string) string { return `{"msgtype":"m.image","url":"mxc://test/` + id + `"}` }
	for _, id := range []string{posted, old} {
		if err := e.repo.EventStored(bg, "!room:test", "$"+id, json.RawMessage(content(id))); err != nil {
			t.Fatal(err)
		}
	}
	// References to other servers' media are not indexed.
	if err := e.repo.EventStored(bg, "!room:test", "$remote", json.RawMessage(`{"url":"mxc://elsewhere/`+unposted+`"}`)); err != nil {
		t.Fatal(err)
	}
	if refs, err := e.st.MediaRefs(bg, "mxc://elsewhere/"+unposted, 10); err != nil || len(refs) != 0 {
		t.Fatalf("remote reference indexed: %v, %v", refs, err)
	}
	if !mustMeta(t, e, posted).Referenced {
		t.Fatal("posted media not marked referenced (it would be purged)")
	}
	events["@bob:test"] = map[string]string{"$" + posted: content(posted)}

	check := func(who, token, path string, want int) {
		t.Helper()
		resp := e.req("GET", path, token, nil)
		readAll(t, resp)
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d, want %d", who, path, resp.StatusCode, want)
		}
	}
	check("uploader", alice, download(posted), 200)
	check("reader of the event", bob, download(posted), 200)
	check("reader of the event", bob, thumbPath(posted, 32, 32, "crop"), 200)
	check("reader of another event", bob, download(old), 404)
	check("anyone", bob, download(unposted), 200)
	// Media from before the freeze, once posted, is not served without a
	// token: nobody can be asked whether they may see it.
	check("no token", "", "/_matrix/media/v3/download/test/"+old, 404)
	// What may be posted in a room later is not left in shared caches.
	if resp := e.req("GET", "/_matrix/media/v3/download/test/"+e.storeLegacy("OldNotPosted", []byte("x")), "", nil); resp.StatusCode != 200 ||
		resp.Header.Get("Cache-Control") != "private, max-age=31536000, immutable" {
		t.Fatalf("unposted legacy media = %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	check("no token", "", "/_matrix/media/v3/thumbnail/test/"+old+"?width=32&height=32", 404)
	// An event that no longer carries the URI (redacted) does not count.
	events["@bob:test"]["$"+posted] = `{}`
	check("reader of the redacted event", bob, download(posted), 404)

	// Marked referenced but with no event indexed (a database whose
	// referencing events were redacted before the index existed, or an
	// index write that failed): kept to the uploader.
	lost := e.upload(alice, "text/plain", "", []byte("posted, index lost"))
	if err := e.repo.MarkReferenced(bg, []string{"mxc://test/" + lost}); err != nil {
		t.Fatal(err)
	}
	check("anyone", bob, download(lost), 404)
	check("uploader", alice, download(lost), 200)
}
