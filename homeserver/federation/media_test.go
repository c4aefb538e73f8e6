package federation

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/internal/mxerr"
)

// fakeMedia serves "cat" (a download) and its thumbnail.
type fakeMedia struct{ thumbQuery url.Values }

func (f *fakeMedia) ServeFederationMedia(w http.ResponseWriter, r *http.Request, origin, id string, thumbnail bool) error {
	if id != "cat" || origin != "x.example" {
		return mxerr.NotFoundf("Media not found")
	}
	body := "meow, the whole file"
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Disposition", `attachment; filename="cat.txt"`)
	if thumbnail {
		f.thumbQuery = r.URL.Query()
		w.Header().Set("Content-Type", "image/png")
		body = "a small cat"
	}
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(body))
	return nil
}

// TestFederationMedia: media goes across as the spec's multipart answer
// (metadata part, file part with its headers) and comes back out of it;
// unknown media is ErrMediaNotFound.
func TestFederationMedia(t *testing.T) {
	fm := &fakeMedia{}
	x, y := fedPair(t, nil)
	y.SetMedia(fm)
	ctx := context.Background()

	resp, err := x.Client.Open(ctx, "GET", "y.example", "/_matrix/federation/v1/media/download/cat", nil, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/mixed; boundary=") || !bytes.Contains(raw, []byte("Content-Type: application/json\r\n\r\n{}")) {
		t.Fatalf("answer: %s\n%s", resp.Header.Get("Content-Type"), raw)
	}

	rm, err := x.DownloadMedia(ctx, "y.example", "cat", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rm.Body)
	rm.Body.Close()
	if string(b) != "meow, the whole file" || rm.ContentType != "text/plain" || rm.FileName != "cat.txt" {
		t.Fatalf("download: %q %q %q", b, rm.ContentType, rm.FileName)
	}
	rm, err = x.DownloadMedia(ctx, "y.example", "cat", url.Values{"width": {"32"}, "height": {"32"}, "method": {"crop"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rm.Body)
	rm.Body.Close()
	if string(b) != "a small cat" || rm.ContentType != "image/png" || fm.thumbQuery.Get("method") != "crop" {
		t.Fatalf("thumbnail: %q %q %v", b, rm.ContentType, fm.thumbQuery)
	}
	if _, err := x.DownloadMedia(ctx, "y.example", "dog", nil); !errors.Is(err, ErrMediaNotFound) {
		t.Fatalf("unknown media: %v", err)
	}
	if _, err := x.DownloadMedia(ctx, "z.example", "cat", nil); err == nil || errors.Is(err, ErrMediaNotFound) {
		t.Fatalf("an unreachable server: %v", err)
	}
	// Without a media repository: 404.
	y.SetMedia(nil)
	if _, err := x.DownloadMedia(ctx, "y.example", "cat", nil); !errors.Is(err, ErrMediaNotFound) {
		t.Fatalf("no repository: %v", err)
	}
}
