package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func uploadMedia(t *testing.T, c *mxtest.Client, ctype, name string, data []byte) string {
	t.Helper()
	req, _ := http.NewRequest("POST", c.Base+"/_matrix/media/v3/upload?filename="+name, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", ctype)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("upload: %d %s", res.StatusCode, b)
	}
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if err := jsonUnmarshal(b, &out); err != nil || !strings.HasPrefix(out.ContentURI, "mxc://localhost/") {
		t.Fatalf("upload answer %s", b)
	}
	return out.ContentURI
}

func download(t *testing.T, c *mxtest.Client, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", c.Base+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// TestAttachmentRoundTrip: an image and a PDF are uploaded, sent in a room
// as m.image and m.file, read by another member, downloaded intact (the
// image also as a thumbnail), and kept by a purge because events
// reference them, while an unreferenced upload is purged.
func TestAttachmentRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{bob.UserID}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})

		var img bytes.Buffer
		m := image.NewRGBA(image.Rect(0, 0, 640, 480))
		for x := 0; x < 640; x++ {
			m.Set(x, x%480, color.RGBA{200, 30, 30, 255})
		}
		_ = png.Encode(&img, m)
		pdf := []byte("%PDF-1.7\n% syllabus du cours de réseaux\n%%EOF\n")
		imgURI := uploadMedia(t, alice, "image/png", "schema.png", img.Bytes())
		pdfURI := uploadMedia(t, alice, "application/pdf", "syllabus.pdf", pdf)
		orphan := uploadMedia(t, alice, "text/plain", "brouillon.txt", []byte("jamais envoyé"))
		sendMsg(alice, room, "img", map[string]any{"msgtype": "m.image", "body": "schema.png", "url": imgURI,
			"info": map[string]any{"mimetype": "image/png", "w": 640, "h": 480, "size": img.Len()}})
		sendMsg(alice, room, "pdf", map[string]any{"msgtype": "m.file", "body": "syllabus.pdf", "url": pdfURI,
			"info": map[string]any{"mimetype": "application/pdf", "size": len(pdf)}})

		msgs := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?limit=10", room), nil)
		var urls []string
		for _, e := range msgs.Body["chunk"].([]any) {
			c := e.(map[string]any)["content"].(map[string]any)
			if u, ok := c["url"].(string); ok {
				urls = append(urls, u)
			}
		}
		if len(urls) != 2 {
			t.Fatalf("bob sees %v", urls)
		}
		for _, u := range urls {
			id := strings.TrimPrefix(u, "mxc://")
			res, body := download(t, bob, "/_matrix/client/v1/media/download/"+id)
			want := pdf
			if u == imgURI {
				want = img.Bytes()
			}
			if res.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("download %s: %d, %d bytes", u, res.StatusCode, len(body))
			}
		}
		res, thumb := download(t, bob, "/_matrix/client/v1/media/thumbnail/"+strings.TrimPrefix(imgURI, "mxc://")+"?width=96&height=96&method=crop")
		if res.StatusCode != 200 || len(thumb) == 0 || len(thumb) >= img.Len() {
			t.Fatalf("thumbnail: %d, %d bytes", res.StatusCode, len(thumb))
		}
		res, _ = download(t, bob, "/_matrix/client/v1/media/download/"+strings.TrimPrefix(pdfURI, "mxc://"))
		if !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("pdf headers: %v", res.Header)
		}

		n, _, err := srv.srv.hs.Media.Purge(context.Background(), 0)
		if err != nil || n != 1 {
			t.Fatalf("purge removed %d (%v), want the one unreferenced upload", n, err)
		}
		if res, _ := download(t, alice, "/_matrix/client/v1/media/download/"+strings.TrimPrefix(orphan, "mxc://")); res.StatusCode != 404 {
			t.Fatalf("orphan after purge: %d", res.StatusCode)
		}
		if res, body := download(t, bob, "/_matrix/client/v1/media/download/"+strings.TrimPrefix(pdfURI, "mxc://")); res.StatusCode != 200 || !bytes.Equal(body, pdf) {
			t.Fatalf("referenced pdf after purge: %d", res.StatusCode)
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
