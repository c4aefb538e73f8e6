package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/internal/redact"
)

// mountTmpfs mounts a tmpfs of the given size (as mount(8) takes it, "8m")
// on a new directory and unmounts it when the test ends (after the server,
// whose Stop was registered later, has stopped). Mounting needs root: CI
// runs as root and must not skip; elsewhere the test is skipped with the
// reason.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs (CI=true runs as root): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file until the file system is full and returns its
// path; removing it gives the space back.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	// The last partial chunk may leave a little room: take it too.
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			return path
		}
	}
}

// integrityCheck runs PRAGMA integrity_check on the SQLite database at
// path (the server stopped) and fails unless it answers "ok".
func integrityCheck(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q, %v", res, err)
	}
}

// TestSQLiteFullDiskAndReadOnly: the data directory (SQLite database and
// media) is a small tmpfs. Filled up, then made read-only, the server
// refuses writes with M_UNKNOWN 503 (Retry-After), goes on serving reads, recovers by
// itself when space (or write access) returns, loses nothing it
// acknowledged, and the database passes integrity_check. An upload cut off
// by the full disk leaves no temporary file behind and no media row
// without its file. Real HTTP on loopback; SQLite only (PostgreSQL keeps
// its data elsewhere; TestPostgresOutage covers its failures). Run with -v
// for the measured figures (docs/FAULTS.md).
func TestSQLiteFullDiskAndReadOnly(t *testing.T) {
	dir := mountTmpfs(t, "24m")
	dbPath := filepath.Join(dir, "salon.db")
	srv := startServer(t, "sqlite:"+dbPath, func(c *Config) { c.DataDir = dir })
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	alice.HTTP.Timeout = faultRequestBound
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
	var acked []string
	txn := 0
	// Large bodies make each send grow the WAL.
	pad := strings.Repeat("x", 20<<10)
	send := func(label string) (mxtest.Response, string) {
		txn++
		body := fmt.Sprintf("%s %d %s", label, txn, pad)
		return alice.Do("PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, fmt.Sprintf("t%d", txn)),
			map[string]any{"msgtype": "m.text", "body": body}), body
	}
	for i := 0; i < 10; i++ {
		r, body := send("before")
		if r.Status != 200 {
			t.Fatalf("send before the fault: %d %s", r.Status, r.Raw)
		}
		acked = append(acked, body)
	}
	reads := func(when string) {
		t.Helper()
		r := alice.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=5", room), nil)
		if r.Status != 200 {
			t.Fatalf("/messages %s: %d %s", when, r.Status, r.Raw)
		}
		alice.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil)
	}
	// writesFail sends until one is refused: each answer is either 200
	// (kept) or M_UNKNOWN 503; it returns how many were refused of the
	// few tried after the first refusal.
	writesFail := func(when string) int {
		t.Helper()
		failed := 0
		for i := 0; i < 400 && failed < 5; i++ {
			r, body := send(when)
			switch {
			case r.Status == 200:
				acked = append(acked, body)
			case storageUnavailable(r):
				failed++
			default:
				t.Fatalf("send %s: %d %s, want 200 or M_UNKNOWN 503 with Retry-After", when, r.Status, r.Raw)
			}
		}
		if failed == 0 {
			t.Fatalf("no send refused %s", when)
		}
		return failed
	}
	recovers := func(when string) (time.Duration, int) {
		t.Helper()
		start, failed := time.Now(), 0
		for {
			r, body := send("after " + when)
			if r.Status == 200 {
				acked = append(acked, body)
				return time.Since(start), failed
			}
			failed++
			if time.Since(start) > time.Minute {
				t.Fatalf("not recovered a minute after %s: %d %s", when, r.Status, r.Raw)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	mediaFiles := func() map[string]bool {
		out := map[string]bool{}
		_ = filepath.WalkDir(filepath.Join(dir, "media"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				out[strings.TrimPrefix(p, dir)] = true
			}
			return nil
		})
		return out
	}
	upload := func(size int) mxtest.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/_matrix/media/v3/upload?filename=big.bin", bytes.NewReader(bytes.Repeat([]byte{0xa5}, size)))
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := alice.HTTP.Do(req)
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		defer res.Body.Close()
		out := mxtest.Response{Status: res.StatusCode, Header: res.Header}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(res.Body)
		out.Raw = buf.Bytes()
		if len(out.Raw) > 0 && out.Raw[0] == '{' {
			_ = json.Unmarshal(out.Raw, &out.Body)
		}
		return out
	}
	if r := upload(64 << 10); r.Status != 200 {
		t.Fatalf("upload before the fault: %d %s", r.Status, r.Raw)
	}
	filesBefore := mediaFiles()

	// Full disk.
	filler := fillDisk(t, dir)
	failedFull := writesFail("on a full disk")
	reads("on a full disk")
	// An upload larger than the space left fails part way through.
	if r := upload(4 << 20); !storageUnavailable(r) {
		t.Fatalf("upload on a full disk: %d %s, want M_UNKNOWN 503 with Retry-After", r.Status, r.Raw)
	}
	if got := mediaFiles(); len(got) != len(filesBefore) {
		t.Fatalf("media files after the failed upload: %v, before: %v", got, filesBefore)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	fullRecovery, fullFailedAfter := recovers("space returned")
	t.Logf("full disk: %d sends refused with M_UNKNOWN 503, reads served, a 4 MiB upload refused without leftovers; first send acknowledged %v after space returned (%d refused in between)",
		failedFull, fullRecovery.Round(time.Millisecond), fullFailedAfter)

	// Nothing acknowledged is lost.
	have := map[string]bool{}
	from := ""
	for {
		q := mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=100", room)
		if from != "" {
			q += "&from=" + from
		}
		r := alice.Must(200, "GET", q, nil)
		chunk, _ := r.Body["chunk"].([]any)
		for _, e := range chunk {
			if c, ok := e.(map[string]any)["content"].(map[string]any); ok {
				if b, ok := c["body"].(string); ok {
					have[b] = true
				}
			}
		}
		if len(chunk) == 0 || r.Str("end") == "" {
			break
		}
		from = r.Str("end")
	}
	for _, b := range acked {
		if !have[b] {
			t.Errorf("acknowledged message %.20q… is missing", b)
		}
	}
	srv.Stop()
	integrityCheck(t, dbPath)
	// Every media row's blob is on disk.
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT lower(hex(sha256)) FROM media WHERE sha256 IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		n++
		if _, err := os.Stat(filepath.Join(dir, "media", "blobs", h[:2], h[2:4], h)); err != nil {
			t.Errorf("media row points at a missing blob: %v", err)
		}
	}
	rows.Close()
	var pending int
	if err := db.QueryRow("SELECT count(*) FROM media WHERE sha256 IS NULL").Scan(&pending); err != nil || pending != 0 {
		t.Errorf("media rows without content after the failed upload: %d, %v", pending, err)
	}
	db.Close()
	if n != 1 {
		t.Errorf("%d media rows with content, want the one upload that succeeded", n)
	}

	// Read-only data directory. A mounted file system with the database
	// open for writing cannot be remounted read-only (EBUSY), and root
	// ignores file modes, so the server meets it at start: it must refuse
	// to start with an error, not panic or serve half a server; started
	// again once the directory is writable, everything is there.
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	cfg := Defaults()
	cfg.DataDir, cfg.Database, cfg.SQLiteSynchronous = dir, redact.URL("sqlite:"+dbPath), "normal"
	cfg.Listen, cfg.Metrics.Listen = "127.0.0.1:0", ""
	cfg.TURN.ListenUDP, cfg.TURN.ListenTCP, cfg.TURN.UDPSockets = "127.0.0.1:0", "127.0.0.1:0", 1
	cfg.SFU.UDPPort, cfg.SFU.TCPPort = freeUDPPort(t), -1
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if ro, err := newServer(ctx, cfg, ln, slog.New(slog.DiscardHandler)); err == nil {
		_ = ro.closeAll()
		t.Fatal("the server started on a read-only data directory")
	} else {
		t.Logf("read-only data directory: the server refuses to start: %v", err)
	}
	ln.Close()
	if out, err := exec.Command("mount", "-o", "remount,rw", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-write: %v: %s", err, out)
	}
	integrityCheck(t, dbPath)
	again := startServer(t, "sqlite:"+dbPath, func(c *Config) { c.DataDir = dir })
	alice.Base = again.URL
	if r, body := send("after read-only"); r.Status != 200 {
		t.Fatalf("send after the read-only start: %d %s", r.Status, r.Raw)
	} else {
		acked = append(acked, body)
	}
}
