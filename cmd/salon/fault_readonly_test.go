package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
)

// setImmutable sets (on) or clears the immutable attribute of every file
// and directory under dir except SQLite's -shm index, files first. On
// ext4 (and other file systems with chattr +i) the kernel then refuses,
// to root too, every write to those files through descriptors already
// open, every new file, rename and removal: a read-only data directory
// under a running server, which a remount cannot give while the database
// is open for writing (EBUSY). The -shm file is left writable because
// SQLite maps it into memory and a refused write there is a SIGBUS that
// no server survives; it holds no data, only the WAL's index.
func setImmutable(t *testing.T, dir string, on bool) error {
	t.Helper()
	var files, dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular() && !strings.HasSuffix(p, "-shm"):
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // deepest first
	flag := "+i"
	if !on {
		flag = "-i"
	}
	if out, err := exec.Command("chattr", append([]string{flag}, append(files, dirs...)...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("chattr %s: %v: %s", flag, err, out)
	}
	return nil
}

// TestSQLiteReadOnlyWhileRunning: the data directory (SQLite database,
// WAL, media) of a running server becomes read-only, then writable again.
// Sends and uploads are refused with M_UNKNOWN 503, Retry-After and a JSON body, fast;
// reads (/messages, /sync, downloads, /health) go on; once writable the
// server recovers by itself, nothing acknowledged is lost, no upload left
// a file or a row behind, and the database passes integrity_check. Needs
// root (chattr); CI=true runs as root and must not skip. Run with -v for
// the figures in docs/FAULTS.md.
func TestSQLiteReadOnlyWhileRunning(t *testing.T) {
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", probe).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chattr +i (CI=true runs as root on a file system that has it): %v: %s", err, out)
		}
		t.Skipf("cannot set the immutable attribute (needs root and ext4, xfs, btrfs…): %v: %s", err, out)
	}
	_ = exec.Command("chattr", "-i", probe).Run()
	_ = os.Remove(probe)

	dbPath := filepath.Join(dir, "salon.db")
	logs := &lockedBuffer{}
	srv := startServerLog(t, "sqlite:"+dbPath, slog.New(slog.NewTextHandler(logs, nil)), func(c *Config) { c.DataDir = dir })
	readOnly := false
	t.Cleanup(func() { // before the server stops and the directory is removed
		if readOnly {
			_ = setImmutable(t, dir, false)
		}
	})
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	alice.HTTP.Timeout = faultRequestBound
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
	var acked []string
	txn := 0
	send := func(label string) (mxtest.Response, string, time.Duration) {
		txn++
		body := fmt.Sprintf("%s %d", label, txn)
		start := time.Now()
		r := alice.Do("PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, fmt.Sprintf("t%d", txn)), map[string]any{"msgtype": "m.text", "body": body})
		return r, body, time.Since(start)
	}
	for i := 0; i < 5; i++ {
		r, body, _ := send("before")
		if r.Status != 200 {
			t.Fatalf("send before: %d %s", r.Status, r.Raw)
		}
		acked = append(acked, body)
	}
	upload := func(data []byte) mxtest.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/_matrix/media/v3/upload?filename=f.bin", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		req.Header.Set("Content-Type", "application/octet-stream")
		return do(t, alice.HTTP, req)
	}
	content := bytes.Repeat([]byte("salon"), 20000)
	up := upload(content)
	if up.Status != 200 {
		t.Fatalf("upload before: %d %s", up.Status, up.Raw)
	}
	mxc := strings.TrimPrefix(up.Str("content_uri"), "mxc://")
	download := func() mxtest.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/_matrix/client/v1/media/download/"+mxc, nil)
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		return do(t, alice.HTTP, req)
	}
	var filesBefore []string
	_ = filepath.WalkDir(filepath.Join(dir, "media"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			filesBefore = append(filesBefore, p)
		}
		return nil
	})

	// Read-only.
	if err := setImmutable(t, dir, true); err != nil {
		t.Fatal(err)
	}
	readOnly = true
	refused, slowest := 0, time.Duration(0)
	for i := 0; i < 10; i++ {
		r, body, took := send("read-only")
		slowest = max(slowest, took)
		switch {
		case r.Status == 200:
			acked = append(acked, body) // fitted in what SQLite had already written; kept
		case storageUnavailable(r):
			refused++
		default:
			t.Fatalf("send on a read-only directory: %d %s, want 200 or M_UNKNOWN 503 with Retry-After", r.Status, r.Raw)
		}
	}
	if refused == 0 {
		t.Fatal("no send refused on a read-only data directory")
	}
	if r := upload([]byte("refused")); !storageUnavailable(r) {
		t.Fatalf("upload on a read-only directory: %d %s, want M_UNKNOWN 503 with Retry-After", r.Status, r.Raw)
	}
	checkUnavailableLogs(t, logs.String(), refused+1)
	if r := alice.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=50", room), nil); r.Status != 200 {
		t.Fatalf("/messages on a read-only directory: %d %s", r.Status, r.Raw)
	}
	alice.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil)
	if r := download(); r.Status != 200 || !bytes.Equal(r.Raw, content) {
		t.Fatalf("download on a read-only directory: %d (%d bytes)", r.Status, len(r.Raw))
	}
	if r := mxtest.New(t, srv.URL).Do("GET", "/health", nil); r.Status != 200 {
		t.Fatalf("/health on a read-only directory: %d %s", r.Status, r.Raw)
	}

	// Writable again.
	if err := setImmutable(t, dir, false); err != nil {
		t.Fatal(err)
	}
	readOnly = false
	start, failedAfter := time.Now(), 0
	for {
		r, body, _ := send("after")
		if r.Status == 200 {
			acked = append(acked, body)
			break
		}
		failedAfter++
		if time.Since(start) > time.Minute {
			t.Fatalf("not recovered a minute after the directory became writable: %d %s", r.Status, r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	recovery := time.Since(start)
	if r := upload([]byte("after")); r.Status != 200 {
		t.Fatalf("upload after: %d %s", r.Status, r.Raw)
	}
	t.Logf("read-only while running: %d of 10 sends refused with M_UNKNOWN 503 (slowest answer %v), upload refused, /messages, /sync, download and /health served; first send acknowledged %v after the directory became writable (%d refused in between)",
		refused, slowest.Round(time.Millisecond), recovery.Round(time.Millisecond), failedAfter)

	r := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=100", room), nil)
	for _, b := range acked {
		if !strings.Contains(string(r.Raw), `"`+b+`"`) {
			t.Errorf("acknowledged message %q is missing", b)
		}
	}
	srv.Stop()
	integrityCheck(t, dbPath)
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, pending int
	if err := db.QueryRow("SELECT count(*), count(*) FILTER (WHERE sha256 IS NULL) FROM media").Scan(&rows, &pending); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || pending != 0 {
		t.Errorf("media rows: %d (%d without content), want the 2 uploads that succeeded", rows, pending)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "media", "tmp", "*")); len(leftovers) != 0 {
		t.Errorf("temporary media files left: %v", leftovers)
	}
}

// do sends req and reads the whole answer.
func do(t *testing.T, hc *http.Client, req *http.Request) mxtest.Response {
	t.Helper()
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := mxtest.Response{Status: res.StatusCode, Raw: raw, Header: res.Header}
	if len(raw) > 0 && raw[0] == '{' {
		_ = json.Unmarshal(raw, &out.Body)
	}
	return out
}

// TestPostgresReadOnlyDataDir: with PostgreSQL the data directory holds
// the media and the signing key; made read-only under a running server,
// uploads are refused with M_UNKNOWN 503 and leave nothing behind, while
// messages (in PostgreSQL) and downloads go on; writable again, uploads
// work without a restart.
func TestPostgresReadOnlyDataDir(t *testing.T) {
	db := pgtest.URL(t)
	dir := t.TempDir()
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chattr +i (CI=true runs as root on a file system that has it): %v: %s", err, out)
		}
		t.Skipf("cannot set the immutable attribute (needs root and ext4, xfs, btrfs…): %v: %s", err, out)
	}
	_ = exec.Command("chattr", "-i", dir).Run()
	srv := startServer(t, db, func(c *Config) { c.DataDir = dir })
	readOnly := false
	t.Cleanup(func() {
		if readOnly {
			_ = setImmutable(t, dir, false)
		}
	})
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	alice.HTTP.Timeout = faultRequestBound
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
	upload := func(data string) mxtest.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/_matrix/media/v3/upload?filename=f.txt", strings.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		req.Header.Set("Content-Type", "text/plain")
		return do(t, alice.HTTP, req)
	}
	first := upload("before")
	if first.Status != 200 {
		t.Fatalf("upload before: %d %s", first.Status, first.Raw)
	}
	if err := setImmutable(t, dir, true); err != nil {
		t.Fatal(err)
	}
	readOnly = true
	if r := upload("refused"); !storageUnavailable(r) {
		t.Fatalf("upload on a read-only directory: %d %s, want M_UNKNOWN 503 with Retry-After", r.Status, r.Raw)
	}
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/t1", room), map[string]any{"msgtype": "m.text", "body": "still"})
	dl := alice.Must(200, "GET", "/_matrix/client/v1/media/download/"+strings.TrimPrefix(first.Str("content_uri"), "mxc://"), nil)
	if string(dl.Raw) != "before" {
		t.Fatalf("download on a read-only directory: %q", dl.Raw)
	}
	if err := setImmutable(t, dir, false); err != nil {
		t.Fatal(err)
	}
	readOnly = false
	if r := upload("after"); r.Status != 200 {
		t.Fatalf("upload after: %d %s", r.Status, r.Raw)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "media", "tmp", "*")); len(leftovers) != 0 {
		t.Errorf("temporary media files left: %v", leftovers)
	}
}
