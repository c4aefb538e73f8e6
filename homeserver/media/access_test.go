package media

import (
	"bytes"
	"crypto/sha256"
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
