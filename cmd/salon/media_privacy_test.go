package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver"
	"github.com/salonhq/salon/homeserver/media"
	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/homeserver/store"
)

// fetchMedia GETs a media path with token ("" for none) and returns the
// status, the errcode of an error answer and the body.
func fetchMedia(t *testing.T, base, token, path string) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e struct{ Errcode string }
	if res.StatusCode != 200 {
		_ = json.Unmarshal(b, &e)
	}
	return res.StatusCode, e.Errcode, b
}

func smallPNG(t *testing.T, w, h int, c color.RGBA) []byte {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		copy(m.Pix[i:], []byte{c.R, c.G, c.B, c.A})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestMediaFreezeHTTP: with the default configuration a new upload is
// not served by the legacy unauthenticated endpoint (404 M_NOT_FOUND, as
// Synapse answers), only by the authenticated one; media from before the
// freeze (stored as an older Salon stored it) still is.
func TestMediaFreezeHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		ctx := context.Background()
		dir := t.TempDir()
		old := smallPNG(t, 64, 64, color.RGBA{10, 200, 10, 255})
		st, err := homeserver.OpenStore(ctx, db, dir, "normal")
		if err != nil {
			t.Fatal(err)
		}
		blobs, err := media.NewLocalBlobs(filepath.Join(dir, "media"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(old)
		w, err := blobs.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(old)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		ts := time.Now().Add(-30 * 24 * time.Hour).UnixMilli()
		if err := st.CommitMedia(ctx, store.MediaMeta{MediaID: "OldFromBeforeTheFreeze", UserID: "@alice:localhost",
			SHA256: sum[:], Size: int64(len(old)), ContentType: "image/png", CreatedTS: ts, UploadedTS: ts},
			0, func() error { return w.Commit(sum) }); err != nil {
			t.Fatal(err)
		}
		st.Close()

		srv := startServer(t, db, func(c *Config) { c.DataDir = dir })
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		img := smallPNG(t, 200, 100, color.RGBA{200, 10, 10, 255})
		id := strings.TrimPrefix(uploadMedia(t, alice, "image/png", "new.png", img), "mxc://")

		for _, path := range []string{"/_matrix/media/v3/download/" + id, "/_matrix/media/v3/thumbnail/" + id + "?width=32&height=32"} {
			if st, code, _ := fetchMedia(t, srv.URL, "", path); st != 404 || code != "M_NOT_FOUND" {
				t.Fatalf("legacy %s of a new upload = %d %s, want 404 M_NOT_FOUND", path, st, code)
			}
		}
		if st, _, body := fetchMedia(t, srv.URL, bob.Token, "/_matrix/client/v1/media/download/"+id); st != 200 || !bytes.Equal(body, img) {
			t.Fatalf("authenticated download = %d", st)
		}
		if st, code, _ := fetchMedia(t, srv.URL, "", "/_matrix/client/v1/media/download/"+id); st != 401 || code != "M_MISSING_TOKEN" {
			t.Fatalf("authenticated endpoint without a token = %d %s", st, code)
		}
		if st, _, body := fetchMedia(t, srv.URL, "", "/_matrix/media/v3/download/localhost/OldFromBeforeTheFreeze"); st != 200 || !bytes.Equal(body, old) {
			t.Fatalf("legacy download of media from before the freeze = %d", st)
		}
	})
}

// TestMediaRestrictToRooms: with media.restrict_to_rooms, media posted in
// a private room is served (download and thumbnail) to its uploader and
// to those who may see an event referencing it, and to nobody else.
func TestMediaRestrictToRooms(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db, func(c *Config) { c.Media.RestrictToRooms = true })
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol") // logged in, never a member
		dave := mxtest.Register(t, srv.URL, "dave", "password dave")    // joins after the post
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
			"preset": "private_chat", "invite": []string{bob.UserID},
			"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "joined"}}},
		}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})

		img := smallPNG(t, 300, 200, color.RGBA{200, 10, 10, 255})
		imgURI := uploadMedia(t, alice, "image/png", "photo.png", img)
		thumbURI := uploadMedia(t, alice, "image/png", "thumb.png", smallPNG(t, 30, 20, color.RGBA{200, 10, 10, 255}))
		encURI := uploadMedia(t, alice, "application/octet-stream", "", []byte("ciphertext of an attachment"))
		avatarURI := uploadMedia(t, alice, "image/png", "avatar.png", smallPNG(t, 64, 64, color.RGBA{0, 0, 200, 255}))
		unposted := uploadMedia(t, alice, "text/plain", "draft.txt", []byte("not sent anywhere"))
		photoEvent := sendMsg(alice, room, "img", map[string]any{"msgtype": "m.image", "body": "photo.png", "url": imgURI,
			"info": map[string]any{"mimetype": "image/png", "thumbnail_url": thumbURI}})
		sendMsg(alice, room, "enc", map[string]any{"msgtype": "m.file", "body": "notes.bin",
			"file": map[string]any{"url": encURI, "v": "v2"}})
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.avatar/", room), map[string]any{"url": avatarURI})

		// Dave joins after all of it; the history before is hidden from him.
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": dave.UserID})
		dave.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})

		dl := func(uri string) string {
			return "/_matrix/client/v1/media/download/" + strings.TrimPrefix(uri, "mxc://")
		}
		th := func(uri string) string {
			return "/_matrix/client/v1/media/thumbnail/" + strings.TrimPrefix(uri, "mxc://") + "?width=32&height=32&method=crop"
		}
		legacy := func(uri string) string { return "/_matrix/media/v3/download/" + strings.TrimPrefix(uri, "mxc://") }
		expect := func(who string, token, path string, want int) {
			t.Helper()
			st, code, _ := fetchMedia(t, srv.URL, token, path)
			if st != want || (want == 404 && code != "M_NOT_FOUND") {
				t.Fatalf("%s GET %s = %d %s, want %d", who, path, st, code, want)
			}
		}
		for _, uri := range []string{imgURI, thumbURI, encURI, avatarURI} {
			paths := []string{dl(uri)}
			if uri != encURI {
				paths = append(paths, th(uri))
			}
			for _, path := range paths {
				expect("alice (uploader)", alice.Token, path, 200)
				expect("bob (member)", bob.Token, path, 200)
				expect("carol (not a member)", carol.Token, path, 404)
			}
			expect("no token (legacy)", "", legacy(uri), 404)
		}
		for _, uri := range []string{imgURI, thumbURI, encURI} {
			expect("dave (joined after a joined-visibility post)", dave.Token, dl(uri), 404)
			expect("dave (joined after a joined-visibility post)", dave.Token, th(uri), 404)
		}
		// The room's avatar is state, which members see whenever they joined.
		expect("dave (member)", dave.Token, dl(avatarURI), 200)
		expect("no token", "", legacy(avatarURI), 404)
		// Media no event references is served as the spec says.
		expect("carol", carol.Token, dl(unposted), 200)

		// A redacted event references nothing any more.
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/r1", room, photoEvent), map[string]any{})
		expect("bob after the redaction", bob.Token, dl(imgURI), 404)
		expect("alice (uploader) after the redaction", alice.Token, dl(imgURI), 200)

		// Bob leaves: he keeps what he could see while joined, as for
		// the messages themselves; carol still gets nothing.
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		expect("bob after leaving", bob.Token, dl(encURI), 200)
		expect("carol", carol.Token, dl(encURI), 404)
	})
}

// TestMediaUnrestrictedByDefault: without media.restrict_to_rooms any
// logged-in user fetches any media, as the spec says.
func TestMediaUnrestrictedByDefault(t *testing.T) {
	srv := startServer(t, "sqlite:"+filepath.Join(t.TempDir(), "salon.db"))
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	carol := mxtest.Register(t, srv.URL, "carol", "password carol")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
	uri := uploadMedia(t, alice, "image/png", "p.png", smallPNG(t, 10, 10, color.RGBA{1, 2, 3, 255}))
	sendMsg(alice, room, "img", map[string]any{"msgtype": "m.image", "body": "p.png", "url": uri})
	if st, _, _ := fetchMedia(t, srv.URL, carol.Token, "/_matrix/client/v1/media/download/"+strings.TrimPrefix(uri, "mxc://")); st != 200 {
		t.Fatalf("carol = %d", st)
	}
}
