package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

// Key names a blob: the SHA-256 of its bytes.
type Key [32]byte

// String is the key in lower-case hex.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// keyOf converts a stored hash to a Key.
func keyOf(b []byte) (Key, bool) {
	var k Key
	if len(b) != len(k) {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

// ErrBlobNotFound is returned by BlobStore.Open for a key it does not hold.
var ErrBlobNotFound = errors.New("media: blob not found")

// BlobStore holds media bytes by content. The repository never shows it a
// user's file name: keys are hashes. Local disk is the default; an object
// store (S3 and compatibles) implements the same three methods.
type BlobStore interface {
	// Create starts a new blob. Its bytes are invisible until Commit.
	Create(ctx context.Context) (BlobWriter, error)
	// Open returns the blob's bytes, seekable for Range requests; the
	// caller closes it. ErrBlobNotFound when there is none.
	Open(ctx context.Context, key Key) (io.ReadSeekCloser, error)
	// Delete removes a blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, key Key) error
}

// BlobWriter receives the bytes of one new blob.
type BlobWriter interface {
	io.Writer
	// Close makes the written bytes durable. It is called before the
	// metadata transaction, so slow work (fsync, a multipart upload's last
	// part) belongs here.
	Close() error
	// Commit stores the bytes under key, their SHA-256, replacing nothing
	// if the key exists (the bytes are the same). It runs inside the
	// metadata transaction and must be quick; when it returns nil the blob
	// must exist, even if it was deleted since Close.
	Commit(key Key) error
	// Abort discards the bytes. It may be called after Commit, as a no-op.
	Abort() error
}

// LocalBlobs keeps blobs as files under a directory: blobs/ab/cd/abcd…
// (sharded by hash prefix so no directory grows huge) and tmp/ for uploads
// in progress, on the same file system so that Commit is a rename.
type LocalBlobs struct {
	dir string
}

// NewLocalBlobs uses dir (created if needed), normally DATA_DIR/media. It
// removes temporary files a crash left behind that are older than a day.
func NewLocalBlobs(dir string) (*LocalBlobs, error) {
	for _, d := range []string{dir, filepath.Join(dir, "blobs"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	l := &LocalBlobs{dir: dir}
	l.sweepTemp(24 * time.Hour)
	return l, nil
}

// TempDir is where uploads in progress are written.
func (l *LocalBlobs) TempDir() string { return filepath.Join(l.dir, "tmp") }

func (l *LocalBlobs) path(k Key) string {
	h := k.String()
	return filepath.Join(l.dir, "blobs", h[:2], h[2:4], h)
}

func (l *LocalBlobs) sweepTemp(olderThan time.Duration) {
	entries, err := os.ReadDir(l.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > olderThan {
			_ = os.Remove(filepath.Join(l.TempDir(), e.Name()))
		}
	}
}

// Create opens a new temporary file.
func (l *LocalBlobs) Create(context.Context) (BlobWriter, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	name := filepath.Join(l.TempDir(), "up-"+hex.EncodeToString(b[:]))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, store.FileUnavailable(err)
	}
	return &localWriter{l: l, f: f, name: name}, nil
}

// Open opens the blob's file.
func (l *LocalBlobs) Open(_ context.Context, k Key) (io.ReadSeekCloser, error) {
	// *os.File itself is returned so that net/http can sendfile it.
	f, err := os.Open(l.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrBlobNotFound
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Delete removes the blob's file.
func (l *LocalBlobs) Delete(_ context.Context, k Key) error {
	err := os.Remove(l.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

type localWriter struct {
	l      *LocalBlobs
	f      *os.File
	name   string
	closed bool
	done   bool // committed or aborted: the temporary file is gone
}

// The writer's failures that say the disk is out of service (full,
// read-only, failing: store.FileUnavailable) are marked so, and answered
// 503 with Retry-After.
func (w *localWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	return n, store.FileUnavailable(err)
}

func (w *localWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.f.Sync(); err != nil {
		_ = w.f.Close()
		return store.FileUnavailable(err)
	}
	return store.FileUnavailable(w.f.Close())
}

func (w *localWriter) Commit(k Key) error {
	if !w.closed {
		if err := w.Close(); err != nil {
			return err
		}
	}
	if w.done {
		return errors.New("media: blob writer already finished")
	}
	dst := w.l.path(k)
	if _, err := os.Stat(dst); err == nil {
		// Same hash, same bytes: keep the existing file.
		w.done = true
		return store.FileUnavailable(os.Remove(w.name))
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return store.FileUnavailable(err)
	}
	if err := os.Rename(w.name, dst); err != nil {
		return store.FileUnavailable(fmt.Errorf("commit blob: %w", err))
	}
	w.done = true
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func (w *localWriter) Abort() error {
	if !w.closed {
		w.closed = true
		_ = w.f.Close()
	}
	if w.done {
		return nil
	}
	w.done = true
	err := os.Remove(w.name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
