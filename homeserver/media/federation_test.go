package media

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

// fakeRemote stands in for other servers' media over federation.
type fakeRemote struct {
	mu     sync.Mutex
	files  map[string][]byte // "server/id" → content
	types  map[string]string
	calls  int
	thumbs []string
	fail   bool
}

func (f *fakeRemote) FetchRemote(_ context.Context, server, id string, thumb url.Values) (string, string, io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail {
		return "", "", nil, errors.New("connection refused")
	}
	if thumb != nil {
		f.thumbs = append(f.thumbs, thumb.Encode())
		id += "#thumb"
	}
	b, ok := f.files[server+"/"+id]
	if !ok {
		return "", "", nil, ErrRemoteNotFound
	}
	return f.types[server+"/"+id], "../../etc/passwd", io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeRemote) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// TestRemoteMedia: another server's media is fetched once, cached under
// the upload rules (type normalised, name sanitised, size limited), and
// served from the cache after; thumbnails of it are made here; a remote
// failure is 502, a remote 404 is 404, never 500.
func TestRemoteMedia(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxUploadBytes = 64 << 10 })
	img := pngBytes(t, 300, 200)
	remote := &fakeRemote{
		files: map[string][]byte{"other.example/doc": []byte("remote text"), "other.example/img#thumb": img, "other.example/big": make([]byte, 65<<10),
			"other.example/doc#thumb": []byte("<script>")},
		types: map[string]string{"other.example/doc": "text/html; charset=utf-8; evil=1", "other.example/img#thumb": "image/png",
			"other.example/doc#thumb": "text/html"},
	}
	e.repo.p.Remote = remote
	const base = "/_matrix/client/v1/media/download/other.example/"
	resp := e.req("GET", base+"doc", alice, nil)
	if b := readAll(t, resp); resp.StatusCode != 200 || string(b) != "remote text" {
		t.Fatalf("remote download: %d %s", resp.StatusCode, b)
	}
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "text/html; charset=utf-8" || !strings.HasPrefix(cd, "attachment") || strings.Contains(cd, "/") {
		t.Fatalf("headers: %q %q", ct, cd)
	}
	resp = e.req("GET", base+"doc", bob, nil)
	if b := readAll(t, resp); string(b) != "remote text" || remote.count() != 1 {
		t.Fatalf("second download: %s, %d fetches", b, remote.count())
	}
	// Thumbnails: the other server's, of the configured size nearest the
	// request, fetched once per size; only image types.
	for _, q := range []string{"width=30&height=30", "width=32&height=32&method=scale"} {
		resp = e.req("GET", "/_matrix/client/v1/media/thumbnail/other.example/img?"+q, alice, nil)
		if b := readAll(t, resp); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(b, img) {
			t.Fatalf("remote thumbnail: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
		}
	}
	if remote.count() != 2 || len(remote.thumbs) != 1 || remote.thumbs[0] != "height=240&method=scale&width=320" {
		t.Fatalf("thumbnail fetches: %d %v", remote.count(), remote.thumbs)
	}
	mustErr(t, e.req("GET", "/_matrix/client/v1/media/thumbnail/other.example/doc?width=32&height=32", alice, nil), 502, "M_UNKNOWN")
	mustErr(t, e.req("GET", "/_matrix/client/v1/media/thumbnail/other.example/none?width=32&height=32", alice, nil), 404, "M_NOT_FOUND")
	mustErr(t, e.req("GET", "/_matrix/media/v3/thumbnail/other.example/img?width=32&height=32", "", nil), 404, "M_NOT_FOUND")
	mustErr(t, e.req("GET", base+"missing", alice, nil), 404, "M_NOT_FOUND")
	mustErr(t, e.req("GET", base+"big", alice, nil), 502, "M_TOO_LARGE")
	mustErr(t, e.req("GET", "/_matrix/client/v1/media/download/not%20a%20server/doc", alice, nil), 404, "M_NOT_FOUND")
	mustErr(t, e.req("GET", base+"bad.id", alice, nil), 404, "M_NOT_FOUND")
	// The legacy endpoints fetch nothing for anonymous callers under the
	// authenticated-media freeze.
	calls := remote.count()
	mustErr(t, e.req("GET", "/_matrix/media/v3/download/other.example/doc2", "", nil), 404, "M_NOT_FOUND")
	if remote.count() != calls {
		t.Fatal("an anonymous legacy download fetched remote media")
	}
	remote.mu.Lock()
	remote.fail = true
	remote.mu.Unlock()
	mustErr(t, e.req("GET", base+"other", alice, nil), 502, "M_UNKNOWN")
	// What is cached is served with the remote server down.
	if resp := e.req("GET", base+"doc", alice, nil); resp.StatusCode != 200 {
		t.Fatalf("cached download with the remote down: %d", resp.StatusCode)
	}
}

// TestServeFederationMedia: this server's media for another server: the
// whole file with its headers (no Range), media uploaded under the
// authenticated-media freeze included; unknown media is M_NOT_FOUND.
func TestServeFederationMedia(t *testing.T) {
	e := newEnv(t)
	id := e.upload(alice, "image/png", "cat.png", pngBytes(t, 100, 80))
	data := pngBytes(t, 100, 80)
	req := httptest.NewRequest("GET", "/_matrix/federation/v1/media/download/"+id, nil)
	req.Header.Set("Range", "bytes=0-3")
	rec := httptest.NewRecorder()
	if err := e.repo.ServeFederationMedia(rec, req, "other.example", id, false); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), data) || rec.Header().Get("Content-Type") != "image/png" ||
		rec.Header().Get("Content-Disposition") != `inline; filename="cat.png"` {
		t.Fatalf("download for a server: %d %v %d bytes", rec.Code, rec.Header(), rec.Body.Len())
	}
	req = httptest.NewRequest("GET", "/_matrix/federation/v1/media/thumbnail/"+id+"?width=32&height=32", nil)
	rec = httptest.NewRecorder()
	if err := e.repo.ServeFederationMedia(rec, req, "other.example", id, true); err != nil || rec.Code != 200 || rec.Body.Len() == 0 {
		t.Fatalf("thumbnail for a server: %v %d", err, rec.Code)
	}
	for _, bad := range []string{"nothing", "../x", ""} {
		err := e.repo.ServeFederationMedia(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), "other.example", bad, false)
		var me *mxerr.Error
		if !errors.As(err, &me) || me.Code != mxerr.NotFound {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}
