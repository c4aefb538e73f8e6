package media

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"
)

func TestPurge(t *testing.T) {
	e := newEnv(t)
	old := time.Now().Add(-100 * 24 * time.Hour)
	e.clock.Store(&old)
	shared := []byte("shared by an old and a new upload")
	oldOnly := e.upload(alice, "text/plain", "", []byte("old and forgotten"))
	oldShared := e.upload(alice, "text/plain", "", shared)
	oldKept := e.upload(alice, "image/png", "", pngBytes(t, 400, 300))
	oldThumbed := e.upload(alice, "image/png", "", pngBytes(t, 300, 300))
	e.getThumb(thumbPath(oldThumbed, 32, 32, "crop"))
	e.getThumb(thumbPath(oldThumbed, 96, 96, "crop"))
	pending, _ := e.create(bob)
	e.clock.Store(nil)
	newShared := e.upload(bob, "text/plain", "", shared)
	fresh := e.upload(bob, "text/plain", "", []byte("fresh"))

	// An event referencing oldKept was stored.
	if err := e.repo.MarkReferenced(bg, []string{"mxc://test/" + oldKept, "mxc://other.server/" + oldOnly, "not a uri"}); err != nil {
		t.Fatal(err)
	}
	thumbs, err := e.st.MediaThumbnails(bg, mustMeta(t, e, oldThumbed).SHA256)
	if err != nil || len(thumbs) != 3 { // 32 and 96 crop, 320×240 scale: every size smaller than it
		t.Fatalf("thumbnails of a 300×300 image: %d, %v", len(thumbs), err)
	}
	blobsBefore := len(e.files("blobs"))
	n, freed, err := e.repo.Purge(bg, 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// oldOnly, oldShared, oldThumbed and the pending reservation.
	if n != 4 {
		t.Fatalf("purged %d media, want 4", n)
	}
	gone := []string{oldOnly, oldShared, oldThumbed, pending}
	for _, id := range gone {
		mustErr(t, e.req("GET", download(id)+"?timeout_ms=0", alice, nil), 404, "M_NOT_FOUND")
	}
	for _, id := range []string{oldKept, newShared, fresh} {
		if resp := e.req("GET", download(id), alice, nil); resp.StatusCode != 200 {
			t.Fatalf("%s lost: %d", id, resp.StatusCode)
		}
	}
	if got := readAll(t, e.req("GET", download(newShared), alice, nil)); !bytes.Equal(got, shared) {
		t.Fatal("content shared with a purged upload was lost")
	}
	// Freed: oldOnly's blob, oldThumbed's blob and its three thumbnails.
	if left := len(e.files("blobs")); left != blobsBefore-5 {
		t.Fatalf("blobs %d → %d, want 5 fewer", blobsBefore, left)
	}
	if freed <= int64(len("old and forgotten")) {
		t.Fatalf("freed %d bytes", freed)
	}
	// Nothing more to do the second time.
	if n, freed, err := e.repo.Purge(bg, 90*24*time.Hour); err != nil || n != 0 || freed != 0 {
		t.Fatalf("second purge = %d, %d, %v", n, freed, err)
	}
	if _, _, err := e.repo.Purge(bg, -time.Hour); err == nil {
		t.Fatal("negative age accepted")
	}
}

func TestPurgeManyBatches(t *testing.T) {
	e := newEnv(t)
	old := time.Now().Add(-time.Hour)
	e.clock.Store(&old)
	const n = purgeBatch + 17
	for i := 0; i < n; i++ {
		e.upload(alice, "text/plain", "", []byte(fmt.Sprint(i)))
	}
	e.clock.Store(nil)
	got, _, err := e.repo.Purge(bg, time.Minute)
	if err != nil || got != n {
		t.Fatalf("purged %d, %v; want %d", got, err, n)
	}
	if blobs := e.files("blobs"); len(blobs) != 0 {
		t.Fatalf("%d blobs left", len(blobs))
	}
}

func TestReferencedURIs(t *testing.T) {
	var content map[string]any
	_ = json.Unmarshal([]byte(`{
		"msgtype": "m.image", "body": "graph.png", "url": "mxc://test/img",
		"info": {"thumbnail_url": "mxc://test/thumb", "thumbnail_file": {"url": "mxc://test/encthumb"}},
		"file": {"url": "mxc://test/enc"}, "avatar_url": "https://not.mxc/x"}`), &content)
	got := ReferencedURIs(content)
	sort.Strings(got)
	if fmt.Sprint(got) != "[mxc://test/enc mxc://test/encthumb mxc://test/img mxc://test/thumb]" {
		t.Fatalf("got %v", got)
	}
	if got := ReferencedURIs(map[string]any{"url": 5, "info": "x"}); len(got) != 0 {
		t.Fatalf("junk gave %v", got)
	}
}

// TestUploadEventDownload is the round trip of an m.image and an m.file
// message as far as the media repository goes: upload, the references the
// rooms layer will record when it stores the event, and download by
// another user after the retention period. The event itself is sent in
// (The whole round trip through a room is cmd/salon TestAttachmentRoundTrip.)
func TestUploadEventDownload(t *testing.T) {
	e := newEnv(t)
	old := time.Now().Add(-200 * 24 * time.Hour)
	e.clock.Store(&old)
	img := pngBytes(t, 640, 480)
	imgID := e.upload(alice, "image/png", "graph.png", img)
	pdf := []byte("%PDF-1.7 syllabus")
	pdfID := e.upload(alice, "application/pdf", "syllabus.pdf", pdf)
	e.clock.Store(nil)
	events := []map[string]any{
		{"msgtype": "m.image", "body": "graph.png", "url": "mxc://test/" + imgID,
			"info": map[string]any{"mimetype": "image/png", "w": 640, "h": 480, "size": len(img)}},
		{"msgtype": "m.file", "body": "syllabus.pdf", "url": "mxc://test/" + pdfID,
			"info": map[string]any{"mimetype": "application/pdf", "size": len(pdf)}},
	}
	for _, ev := range events {
		if err := e.repo.MarkReferenced(bg, ReferencedURIs(ev)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _, err := e.repo.Purge(bg, 90*24*time.Hour); err != nil || n != 0 {
		t.Fatalf("purge removed %d referenced media (%v)", n, err)
	}
	for _, tc := range []struct {
		id, disposition string
		data            []byte
	}{{imgID, `inline; filename="graph.png"`, img}, {pdfID, `attachment; filename="syllabus.pdf"`, pdf}} {
		resp := e.req("GET", download(tc.id), bob, nil)
		if got := readAll(t, resp); !bytes.Equal(got, tc.data) || resp.Header.Get("Content-Disposition") != tc.disposition {
			t.Fatalf("%s: %d bytes, %q", tc.id, len(got), resp.Header.Get("Content-Disposition"))
		}
	}
	m, _, _ := e.getThumb(thumbPath(imgID, 320, 240, "scale"))
	if m.Bounds().Dx() != 320 {
		t.Fatalf("thumbnail width %d", m.Bounds().Dx())
	}
}
