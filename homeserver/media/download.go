package media

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

const (
	// defaultWait and maxWait bound how long a download of content not yet
	// uploaded waits (timeout_ms; the spec's default is 20 s).
	defaultWait = 20 * time.Second
	maxWait     = 20 * time.Second
	// pollEvery catches uploads that another process received.
	pollEvery = time.Second
)

// GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]
// and the legacy /_matrix/media/v3/download.
func (r *Repo) download(w http.ResponseWriter, req *http.Request, user string) error {
	m, err := r.find(req, user)
	if err != nil {
		return err
	}
	f, key, err := r.openContent(req.Context(), m)
	if err != nil {
		return err
	}
	defer f.Close()
	name := m.UploadName
	if fn := req.PathValue("fileName"); fn != "" {
		name = sanitiseFilename(fn)
	}
	ct := m.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", disposition(ct, name))
	serve(w, req, r.shared(user), key, time.UnixMilli(m.UploadedTS), f)
	return nil
}

// shared reports whether shared caches may keep what user fetches: only
// what anyone may fetch without a token, and only while who may fetch it
// cannot change (with media.restrict_to_rooms, posting it in a room does).
func (r *Repo) shared(user string) bool { return user == "" && !r.cfg.RestrictToRooms }

// serve answers with the blob, honouring Range, If-None-Match, If-Range
// and If-Modified-Since. Content is immutable for its key, which is the
// ETag.
func serve(w http.ResponseWriter, req *http.Request, shared bool, key Key, modified time.Time, f io.ReadSeeker) {
	h := w.Header()
	h.Set("ETag", `"`+key.String()+`"`)
	if shared {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// Fetched with an access token: no shared cache may keep it.
		h.Set("Cache-Control", "private, max-age=31536000, immutable")
	}
	http.ServeContent(w, req, "", modified, f)
}

// openContent opens the blob of uploaded media m.
func (r *Repo) openContent(ctx context.Context, m store.MediaMeta) (io.ReadSeekCloser, Key, error) {
	key, ok := keyOf(m.SHA256)
	if !ok {
		return nil, key, errors.New("media: stored hash has the wrong length")
	}
	f, err := r.blobs.Open(ctx, key)
	if errors.Is(err, ErrBlobNotFound) {
		r.log.Error("media blob missing", "media_id", m.MediaID, "sha256", key.String())
		return nil, key, mxerr.NotFoundf("Media not found")
	}
	return f, key, err
}

// lookup finds the media named by the request's path, waiting up to
// timeout_ms for the content of an asynchronous upload.
func (r *Repo) lookup(req *http.Request) (store.MediaMeta, error) {
	server, id := req.PathValue("serverName"), req.PathValue("mediaId")
	if server != r.p.ServerName {
		// Other servers' media: the cached copy, fetched over federation.
		return r.remote(req.Context(), server, id)
	}
	if !validMediaID(id) {
		return store.MediaMeta{}, mxerr.NotFoundf("Media not found")
	}
	wait := defaultWait
	if s := req.URL.Query().Get("timeout_ms"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return store.MediaMeta{}, mxerr.InvalidParamf("timeout_ms must be an integer")
		}
		wait = time.Duration(min(max(ms, 0), maxWait.Milliseconds())) * time.Millisecond
	}
	return r.waitFor(req.Context(), id, wait)
}

// waitFor returns media id once it has content, or M_NOT_YET_UPLOADED
// after wait.
func (r *Repo) waitFor(ctx context.Context, id string, wait time.Duration) (store.MediaMeta, error) {
	var deadline <-chan time.Time
	var ticker *time.Ticker
	for {
		// Subscribe before reading, so an upload committed between the read
		// and the wait still wakes us.
		ch, done := r.subscribe(id)
		m, err := r.p.Store.MediaMeta(ctx, id)
		if err != nil {
			done()
			if errors.Is(err, store.ErrNotFound) {
				return m, mxerr.NotFoundf("Media not found")
			}
			return m, err
		}
		if !m.Pending() {
			done()
			return m, nil
		}
		if m.ExpiresTS < r.now().UnixMilli() {
			done()
			return m, mxerr.NotFoundf("Media not found")
		}
		if deadline == nil {
			if wait <= 0 {
				done()
				return m, notYetUploaded
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			deadline = t.C
			ticker = time.NewTicker(pollEvery)
			defer ticker.Stop()
		}
		select {
		case <-ch:
		case <-ticker.C:
		case <-deadline:
			done()
			return m, notYetUploaded
		case <-ctx.Done():
			done()
			return m, ctx.Err()
		}
		done()
	}
}

var notYetUploaded = mxerr.New(mxerr.NotYetUploaded, "Content has not yet been uploaded")
