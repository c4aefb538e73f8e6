package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Media over federation (Matrix 1.11). Other servers' media is fetched
// for this server's clients through Remote and cached in the repository
// under the ID "SERVER/MEDIAID" (a local media ID never holds a '/'),
// with the limits of an upload: at most max_upload_bytes, the content type
// normalised, the file name sanitised, served with the same headers. A
// thumbnail of it is the other server's thumbnail of the configured size
// that best answers the request, cached as "SERVER/MEDIAID/WxH-METHOD"
// (an image type only).
// Cached copies are purged by age like any unreferenced media, and fetched
// again when asked for. This server's media is served to other servers
// through ServeFederationMedia: any media, the authenticated-media freeze
// notwithstanding (the request is signed by a server); with
// media.restrict_to_rooms, media posted in rooms is not served to other
// servers.

// Remote fetches another server's media. An answer of 404 is
// ErrRemoteNotFound; any other failure is an error of its own.
type Remote interface {
	// FetchRemote fetches the media (thumb nil) or a thumbnail of it
	// (thumb: width, height, method, animated).
	FetchRemote(ctx context.Context, server, mediaID string, thumb url.Values) (contentType, fileName string, body io.ReadCloser, err error)
}

// ErrRemoteNotFound is a Remote's answer for media its server does not have.
var ErrRemoteNotFound = errors.New("media: remote media not found")

var (
	errRemoteFailed   = mxerr.New(mxerr.Unknown, "The remote server could not provide the media").WithStatus(http.StatusBadGateway)
	errRemoteTooLarge = mxerr.New(mxerr.TooLarge, "Remote content is too large to serve").WithStatus(http.StatusBadGateway)
)

// fedOrigin marks a request of another server (ServeFederationMedia).
type fedOrigin struct{}

// ServeFederationMedia answers another server's request for this server's
// media mediaID (thumbnail: a thumbnail, by the request's width, height,
// method and animated), writing the file's headers and bytes to w.
func (r *Repo) ServeFederationMedia(w http.ResponseWriter, req *http.Request, origin, mediaID string, thumbnail bool) error {
	if !validMediaID(mediaID) {
		return mxerr.NotFoundf("Media not found")
	}
	sub := req.Clone(context.WithValue(req.Context(), fedOrigin{}, origin))
	// The whole file, unconditionally: no Range or validators cross into
	// the multipart answer.
	sub.Header = http.Header{}
	sub.SetPathValue("serverName", r.p.ServerName)
	sub.SetPathValue("mediaId", mediaID)
	if thumbnail {
		return r.thumbnail(w, sub, "")
	}
	return r.download(w, sub, "")
}

// forServer is find for a request of another server.
func (r *Repo) forServer(req *http.Request) (store.MediaMeta, error) {
	m, err := r.lookup(req)
	if err != nil {
		return m, err
	}
	if r.cfg.RestrictToRooms {
		// What rooms' events reference is for those who may see them;
		// which servers' users those are is not worked out here.
		ok, err := r.maySee(req.Context(), m, "")
		if err != nil {
			return m, err
		}
		if !ok {
			return m, errHidden
		}
	}
	return m, nil
}

// remote returns the cached copy of another server's media, fetching it
// first when there is none.
func (r *Repo) remote(ctx context.Context, server, id string) (store.MediaMeta, error) {
	if r.p.Remote == nil || !events.ValidServerName(server) || !validMediaID(id) {
		return store.MediaMeta{}, mxerr.NotFoundf("Media not found")
	}
	return r.cachedRemote(ctx, server, id, server+"/"+id, nil)
}

// cachedRemote returns the copy cacheID of another server's media (thumb
// nil) or of its thumbnail, fetching it first when there is none.
func (r *Repo) cachedRemote(ctx context.Context, server, id, cacheID string, thumb url.Values) (store.MediaMeta, error) {
	if m, err := r.p.Store.MediaMeta(ctx, cacheID); err == nil && !m.Pending() {
		return m, nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return m, err
	}
	// One fetch per media at a time, not bound to the first asker's
	// request: a client that goes away does not fail the others.
	v, err, _ := r.remoteFetch.Do(cacheID, func() (any, error) {
		return r.fetchRemote(context.WithoutCancel(ctx), server, id, cacheID, thumb)
	})
	if err != nil {
		return store.MediaMeta{}, err
	}
	return v.(store.MediaMeta), nil
}

func (r *Repo) fetchRemote(ctx context.Context, server, id, cacheID string, thumb url.Values) (store.MediaMeta, error) {
	ct, name, body, err := r.p.Remote.FetchRemote(ctx, server, id, thumb)
	if errors.Is(err, ErrRemoteNotFound) {
		return store.MediaMeta{}, mxerr.NotFoundf("Media not found")
	}
	if err != nil {
		r.log.Info("remote media not fetched", "server", server, "media_id", id, "err", err)
		return store.MediaMeta{}, errRemoteFailed
	}
	defer body.Close()
	n, key, bw, err := r.write(ctx, body, r.cfg.MaxUploadBytes)
	if err != nil {
		var me *mxerr.Error
		var we *writeErr
		switch {
		case errors.As(err, &me) && me.Code == mxerr.TooLarge:
			return store.MediaMeta{}, errRemoteTooLarge
		case errors.As(err, &we):
			return store.MediaMeta{}, err // ours: the blob store failed
		}
		r.log.Info("remote media cut short", "server", server, "media_id", id, "err", err)
		return store.MediaMeta{}, errRemoteFailed
	}
	defer func() { _ = bw.Abort() }()
	if thumb != nil {
		mt, _, _ := mime.ParseMediaType(ct)
		if !thumbnailTypes[mt] {
			r.log.Info("remote thumbnail of another type refused", "server", server, "media_id", id, "type", ct)
			return store.MediaMeta{}, errRemoteFailed
		}
		ct, name = mt, ""
	}
	now := r.now().UnixMilli()
	m := store.MediaMeta{MediaID: cacheID, SHA256: key[:], Size: n, ContentType: normalContentType(ct),
		UploadName: sanitiseFilename(name), CreatedTS: now, UploadedTS: now, Restricted: r.cfg.AuthenticatedMedia}
	err = r.p.Store.CommitMedia(ctx, m, 0, func() error { return bw.Commit(key) })
	if errors.Is(err, store.ErrExists) {
		return r.p.Store.MediaMeta(ctx, cacheID)
	}
	if err != nil {
		return store.MediaMeta{}, err
	}
	r.fetched.Inc()
	return m, nil
}

// thumbnailTypes are the types a remote thumbnail may have (the spec's
// list for the thumbnail endpoint).
var thumbnailTypes = map[string]bool{"image/png": true, "image/apng": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// remoteThumbnail answers a thumbnail of another server's media: that
// server's thumbnail of the configured size that best answers the request
// (so at most one cached copy per configured size), fetched once over
// federation and cached like the media itself.
func (r *Repo) remoteThumbnail(w http.ResponseWriter, req *http.Request, user string, dw, dh int, method string, animated bool) error {
	server, id := req.PathValue("serverName"), req.PathValue("mediaId")
	if r.p.Remote == nil || !events.ValidServerName(server) || !validMediaID(id) {
		return mxerr.NotFoundf("Media not found")
	}
	if user == "" && r.cfg.AuthenticatedMedia {
		return errHidden
	}
	size := selectSize(r.sizes, dw, dh, method)
	if size.Width == 0 {
		size = ThumbnailSize{Width: dw, Height: dh, Method: method}
	}
	cacheID := fmt.Sprintf("%s/%s/%dx%d-%s", server, id, size.Width, size.Height, size.Method)
	q := url.Values{"width": {strconv.Itoa(size.Width)}, "height": {strconv.Itoa(size.Height)}, "method": {size.Method}}
	if animated {
		cacheID += "-a"
		q.Set("animated", "true")
	}
	m, err := r.cachedRemote(req.Context(), server, id, cacheID, q)
	if err != nil {
		return err
	}
	f, key, err := r.openContent(req.Context(), m)
	if err != nil {
		return err
	}
	defer f.Close()
	thumbHeaders(w, m.ContentType)
	serve(w, req, r.shared(user), key, time.UnixMilli(m.UploadedTS), f)
	return nil
}
