package media

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// copyBufs are the buffers uploads are copied through: large enough for
// few system calls, few enough that a thousand uploads cost 256 MiB at
// worst, and never the size of the file.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// POST /_matrix/media/v3/upload
func (r *Repo) upload(w http.ResponseWriter, req *http.Request, user string) error {
	m := store.MediaMeta{
		MediaID:     newMediaID(),
		UserID:      user,
		ContentType: normalContentType(req.Header.Get("Content-Type")),
		UploadName:  sanitiseFilename(req.URL.Query().Get("filename")),
		Restricted:  r.cfg.AuthenticatedMedia,
	}
	m, err := r.receive(req, m, false)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]string{"content_uri": r.mxc(m.MediaID)})
	return nil
}

// POST /_matrix/media/v1/create
func (r *Repo) create(w http.ResponseWriter, req *http.Request, user string) error {
	now := r.now()
	m := store.MediaMeta{
		UserID:     user,
		CreatedTS:  now.UnixMilli(),
		ExpiresTS:  now.Add(r.cfg.PendingUploads.Expiry.D()).UnixMilli(),
		Restricted: r.cfg.AuthenticatedMedia,
	}
	var err error
	for range 3 { // a collision of 143-bit random IDs is not going to happen; still, retry
		m.MediaID = newMediaID()
		err = r.p.Store.ReserveMedia(req.Context(), m, r.cfg.PendingUploads.MaxPerUser)
		if !errors.Is(err, store.ErrExists) {
			break
		}
	}
	switch {
	case errors.Is(err, store.ErrQuotaExceeded):
		return mxerr.New(mxerr.LimitExceeded, "You have %d uploads pending: finish or let them expire first", r.cfg.PendingUploads.MaxPerUser)
	case err != nil:
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"content_uri": r.mxc(m.MediaID), "unused_expires_at": m.ExpiresTS})
	return nil
}

// PUT /_matrix/media/v3/upload/{serverName}/{mediaId}
func (r *Repo) uploadTo(w http.ResponseWriter, req *http.Request, user string) error {
	server, id := req.PathValue("serverName"), req.PathValue("mediaId")
	if server != r.p.ServerName || !validMediaID(id) {
		return mxerr.NotFoundf("Unknown media ID")
	}
	m, err := r.p.Store.MediaMeta(req.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return mxerr.NotFoundf("Unknown media ID")
	case err != nil:
		return err
	case m.UserID != user:
		return mxerr.Forbid("This media ID was created by another user")
	case !m.Pending():
		return mxerr.New(mxerr.CannotOverwrite, "Media already uploaded")
	case m.ExpiresTS < r.now().UnixMilli():
		return mxerr.NotFoundf("This media ID has expired")
	}
	m.ContentType = normalContentType(req.Header.Get("Content-Type"))
	m.UploadName = sanitiseFilename(req.URL.Query().Get("filename"))
	m.Restricted = m.Restricted || r.cfg.AuthenticatedMedia
	if _, err := r.receive(req, m, true); err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (r *Repo) tooLarge() error {
	return mxerr.New(mxerr.TooLarge, "Cannot upload files larger than %d bytes", r.cfg.MaxUploadBytes)
}

func (r *Repo) overQuota() error {
	return mxerr.Forbid("This upload would exceed your media quota of %d bytes", r.cfg.UserQuotaBytes)
}

// quotaOf is the quota applied to a user; media the server fetched itself
// (user "") has none.
func (r *Repo) quotaOf(user string) int64 {
	if user == "" {
		return 0
	}
	return r.cfg.UserQuotaBytes
}

// receive streams the request body into a new blob, hashing it on the way,
// and records it as m: a new media ID, or the filling of reservation m
// when reserved. Whatever fails, no partial blob and no row stay behind.
func (r *Repo) receive(req *http.Request, m store.MediaMeta, reserved bool) (store.MediaMeta, error) {
	ctx := req.Context()
	limit := r.cfg.MaxUploadBytes
	if req.ContentLength > limit {
		return m, r.tooLarge()
	}
	quota := r.quotaOf(m.UserID)
	if quota > 0 {
		used, err := r.p.Store.MediaUsage(ctx, m.UserID)
		if err != nil {
			return m, err
		}
		if used+max(req.ContentLength, 0) > quota {
			return m, r.overQuota()
		}
	}
	n, key, bw, err := r.write(ctx, req.Body, limit)
	if err != nil {
		return m, err
	}
	defer func() { _ = bw.Abort() }()

	// From here the client may go away without undoing a stored upload:
	// the commit runs to its end.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	now := r.now().UnixMilli()
	m.SHA256, m.Size, m.UploadedTS = key[:], n, now
	if !reserved {
		m.CreatedTS = now
	}
	for attempt := 0; ; attempt++ {
		err = r.p.Store.CommitMedia(cctx, m, quota, func() error { return bw.Commit(key) })
		if errors.Is(err, store.ErrExists) && !reserved && attempt < 2 {
			m.MediaID = newMediaID() // an ID collision: see create
			continue
		}
		break
	}
	switch {
	case errors.Is(err, store.ErrQuotaExceeded):
		return m, r.overQuota()
	case errors.Is(err, store.ErrExists):
		return m, mxerr.New(mxerr.CannotOverwrite, "Media already uploaded")
	case errors.Is(err, store.ErrNotFound):
		return m, mxerr.NotFoundf("This media ID has expired")
	case err != nil:
		return m, err
	}
	r.upBytes.Add(float64(n))
	r.notify(m.MediaID)
	return m, nil
}

// errUploadInterrupted is answered when the body ends early (the client
// disconnected or sent less than its Content-Length).
var errUploadInterrupted = mxerr.New(mxerr.Unknown, "The upload was interrupted").WithStatus(http.StatusBadRequest)

// write copies body into a new blob, closed but not committed, and returns
// its size and SHA-256. On error nothing is left.
func (r *Repo) write(ctx context.Context, body io.Reader, limit int64) (int64, Key, BlobWriter, error) {
	var key Key
	bw, err := r.blobs.Create(ctx)
	if err != nil {
		return 0, key, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = bw.Abort()
		}
	}()
	h := sha256.New()
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	n, err := io.CopyBuffer(io.MultiWriter(blobOut{bw}, h), io.LimitReader(body, limit+1), *bufp)
	if err != nil {
		var we *writeErr
		if errors.As(err, &we) {
			return 0, key, nil, err
		}
		r.log.Debug("upload interrupted", "err", err, "received", n)
		return 0, key, nil, fmt.Errorf("%w (%v)", errUploadInterrupted, err)
	}
	if n > limit {
		return 0, key, nil, r.tooLarge()
	}
	if err := bw.Close(); err != nil {
		return 0, key, nil, err
	}
	copy(key[:], h.Sum(nil))
	ok = true
	return n, key, bw, nil
}

// writeErr marks a failure of the blob store (ours) rather than of the
// request body (the client's).
type writeErr struct{ err error }

func (e *writeErr) Error() string { return "write blob: " + e.err.Error() }
func (e *writeErr) Unwrap() error { return e.err }

type blobOut struct{ w io.Writer }

func (b blobOut) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	if err != nil {
		err = &writeErr{err}
	}
	return n, err
}

// waiter is the downloads waiting for one media ID's content.
type waiter struct {
	ch chan struct{}
	n  int
}

// notify wakes downloads waiting for a media ID's content.
func (r *Repo) notify(id string) {
	r.waitMu.Lock()
	defer r.waitMu.Unlock()
	if w, ok := r.waiters[id]; ok {
		close(w.ch)
		delete(r.waiters, id)
	}
}

// subscribe returns a channel closed when id's content arrives in this
// process, and the function to call when no longer waiting. Waiters also
// poll the store, for uploads received by another process.
func (r *Repo) subscribe(id string) (<-chan struct{}, func()) {
	r.waitMu.Lock()
	defer r.waitMu.Unlock()
	w, ok := r.waiters[id]
	if !ok {
		w = &waiter{ch: make(chan struct{})}
		r.waiters[id] = w
	}
	w.n++
	return w.ch, func() {
		r.waitMu.Lock()
		defer r.waitMu.Unlock()
		w.n--
		if w.n == 0 && r.waiters[id] == w {
			delete(r.waiters, id)
		}
	}
}
