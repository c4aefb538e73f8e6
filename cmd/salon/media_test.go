package main

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver"
	"github.com/salonhq/salon/homeserver/media"
	"github.com/salonhq/salon/homeserver/store"
)

func TestMediaPurgeCommand(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := homeserver.OpenStore(ctx, "sqlite:salon.db", dir, "normal")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := media.NewLocalBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	put := func(id, content string, age time.Duration) {
		sum := sha256.Sum256([]byte(content))
		w, err := blobs.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(content))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		ts := time.Now().Add(-age).UnixMilli()
		m := store.MediaMeta{MediaID: id, UserID: "@a:localhost", SHA256: sum[:], Size: int64(len(content)),
			ContentType: "text/plain", CreatedTS: ts, UploadedTS: ts}
		if err := st.(store.Media).CommitMedia(ctx, m, 0, func() error { return w.Commit(sum) }); err != nil {
			t.Fatal(err)
		}
	}
	put("old", "secret lecture notes", 100*24*time.Hour)
	put("recent", "newer notes", 10*24*time.Hour)
	st.Close()

	code, out, errs := runCLI(t, "media", "purge", "--older-than", "90d", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "purged 1 media") || !strings.Contains(out, "20 bytes freed") {
		t.Fatalf("purge: %d %q %q", code, out, errs)
	}
	if strings.Contains(out, "secret") || strings.Contains(out, "old") && strings.Contains(out, "recent") {
		t.Fatalf("purge output shows media: %q", out)
	}
	code, out, _ = runCLI(t, "media", "purge", "--older-than", "240h", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "purged 1 media") {
		t.Fatalf("purge by hours: %d %q", code, out)
	}
	if code, out, _ = runCLI(t, "media", "purge", "--data-dir", dir); code != 0 || !strings.Contains(out, "purged 0 media") || !strings.Contains(out, "older than 90d") {
		t.Fatalf("purge with the default age: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, "media", "purge", "--older-than", "soon", "--data-dir", dir); code != 1 || !strings.Contains(errs, "--older-than") {
		t.Fatalf("bad age: %d %q", code, errs)
	}
	for _, args := range [][]string{{"media"}, {"media", "list"}, {"media", "show", "old"}, {"media", "purge", "extra"}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Fatalf("%v: exit %d, want usage (2): the operator must not list or read media", args, code)
		}
	}
}
