// Package media is Salon's media repository (Client-Server API, "Content
// repository"): uploads, authenticated and legacy downloads, thumbnails,
// URL previews and the purge of unreferenced media.
//
// Bytes are stored by SHA-256 behind the BlobStore interface (local disk by
// default), metadata through MetaStore. Uploads stream to a temporary blob
// and become visible only once complete and recorded; nothing is held
// whole in memory except thumbnails being made, within a memory budget
// estimated from each image's header before decoding. Who may fetch what
// (the authenticated media freeze, media.restrict_to_rooms) is in
// access.go; the rooms are asked through EventAccess. The package never treats a
// user's file name or media ID as a path, never serves user content in a
// way a browser would run, and never fetches a non-public address for a
// URL preview. It must not import clientapi.
package media

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/salonhq/salon/homeserver/route"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/internal/redact"
)

// MetaStore is the metadata storage the repository needs.
type MetaStore interface {
	store.Media
}

// Authenticator answers "who is this access token?". Its errors should be
// *mxerr.Error values (M_UNKNOWN_TOKEN, M_MISSING_TOKEN, ...).
type Authenticator interface {
	Authenticate(ctx context.Context, token redact.Secret, ip string) (userID string, err error)
}

// Params are the repository's dependencies.
type Params struct {
	Config     Config
	ServerName string
	// DataDir holds media/ when Blobs is nil.
	DataDir string
	Store   MetaStore
	// Blobs stores the bytes; nil means local disk under DataDir/media.
	Blobs BlobStore
	// Auth is needed by Handler; Purge and MarkReferenced work without it.
	Auth Authenticator
	// Events is needed by media.restrict_to_rooms.
	Events EventAccess
	// Remote fetches other servers' media (nil: it is not found).
	Remote     Remote
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// ClientIP returns the caller's address (for the authenticator's
	// last-seen record); nil means the connection's remote address.
	ClientIP func(*http.Request) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Repo is the media repository.
type Repo struct {
	cfg   Config
	p     Params
	log   *slog.Logger
	blobs BlobStore

	sizes []ThumbnailSize
	// thumbMem bounds the memory of the thumbnails being made at once, in
	// bytes (thumbCost of each); thumbWaiting counts those waiting for it.
	thumbMem     *semaphore.Weighted
	thumbWaiting atomic.Int64
	thumbs       singleflight.Group
	// remoteFetch runs one fetch of a remote media at a time.
	remoteFetch singleflight.Group
	// decode decodes a source image (image.Decode; tests count calls).
	decode func(io.Reader) (image.Image, string, error)

	waitMu  sync.Mutex
	waiters map[string]*waiter // by media ID

	preview *previewer

	// noThumbCache makes every thumbnail request generate (benchmarks).
	noThumbCache atomic.Bool

	router   *route.Router
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	upBytes  prometheus.Counter
	made     prometheus.Counter
	fetched  prometheus.Counter
}

// New builds the repository. cfg must have passed Validate.
func New(p Params) (*Repo, error) {
	if p.Store == nil {
		return nil, errors.New("media: no store")
	}
	if p.ServerName == "" {
		return nil, errors.New("media: no server name")
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if err := p.Config.Validate(); err != nil {
		return nil, err
	}
	if p.Config.RestrictToRooms && p.Auth != nil && p.Events == nil {
		// Serving (Handler) needs them; a purge does not.
		return nil, errors.New("media: restrict_to_rooms needs the rooms (Params.Events)")
	}
	r := &Repo{
		cfg:      p.Config,
		p:        p,
		log:      p.Logger,
		blobs:    p.Blobs,
		thumbMem: semaphore.NewWeighted(p.Config.Thumbnails.MemoryBudget),
		decode:   image.Decode,
		waiters:  map[string]*waiter{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "salon_media_requests_total",
			Help: "Media repository requests, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "salon_media_request_duration_seconds",
			Help:    "Time to answer media requests (uploads and downloads include the transfer).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 10, 60, 300},
		}, []string{"route"}),
		upBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "salon_media_uploaded_bytes_total",
			Help: "Bytes of completed uploads.",
		}),
		made: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "salon_media_thumbnails_generated_total",
			Help: "Thumbnails generated (each size of each content once, unless purged).",
		}),
		fetched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "salon_media_remote_fetches_total",
			Help: "Other servers' media fetched over federation and cached.",
		}),
	}
	if r.blobs == nil {
		if p.DataDir == "" {
			return nil, errors.New("media: no data directory and no blob store")
		}
		l, err := NewLocalBlobs(filepath.Join(p.DataDir, "media"))
		if err != nil {
			return nil, fmt.Errorf("media directory: %w", err)
		}
		r.blobs = l
	}
	r.sizes = append([]ThumbnailSize(nil), p.Config.Thumbnails.Sizes...)
	r.preview = newPreviewer(r)
	if p.Registerer != nil {
		p.Registerer.MustRegister(r.requests, r.duration, r.upBytes, r.made, r.fetched)
	}
	r.router = route.New(r.log, r.requests, r.duration)
	r.routes()
	return r, nil
}

const (
	mediaV3  = "/_matrix/media/v3"
	mediaV1  = "/_matrix/media/v1"
	mediaR0  = "/_matrix/media/r0"
	clientV1 = "/_matrix/client/v1/media"
)

func (r *Repo) routes() {

	r.handle(mediaV3+"/upload", methods{http.MethodPost: r.authed(r.upload)})
	r.handle(mediaV1+"/create", methods{http.MethodPost: r.authed(r.create)})
	r.handle(mediaV3+"/upload/{serverName}/{mediaId}", methods{http.MethodPut: r.authed(r.uploadTo)})

	r.handle(clientV1+"/download/{serverName}/{mediaId}", methods{http.MethodGet: r.authed(r.download)})
	r.handle(clientV1+"/download/{serverName}/{mediaId}/{fileName}", methods{http.MethodGet: r.authed(r.download)})
	r.handle(clientV1+"/thumbnail/{serverName}/{mediaId}", methods{http.MethodGet: r.authed(r.thumbnail)})
	r.handle(clientV1+"/config", methods{http.MethodGet: r.authed(r.config)})
	r.handle(clientV1+"/preview_url", methods{http.MethodGet: r.authed(r.previewURL)})

	// Deprecated since Matrix 1.11; downloads and thumbnails there need no
	// access token.
	r.handle(mediaV3+"/download/{serverName}/{mediaId}", methods{http.MethodGet: r.legacy(r.anonymous(r.download))})
	r.handle(mediaV3+"/download/{serverName}/{mediaId}/{fileName}", methods{http.MethodGet: r.legacy(r.anonymous(r.download))})
	r.handle(mediaV3+"/thumbnail/{serverName}/{mediaId}", methods{http.MethodGet: r.legacy(r.anonymous(r.thumbnail))})
	r.handle(mediaV3+"/config", methods{http.MethodGet: r.legacy(r.authed(r.config))})
	r.handle(mediaV3+"/preview_url", methods{http.MethodGet: r.legacy(r.authed(r.previewURL))})
}

// handlerFunc reports failure by returning an error, written as a Matrix
// error unless the response has started.
type handlerFunc = route.HandlerFunc

// userFunc is a handler that knows its caller ("" on unauthenticated
// legacy endpoints).
type userFunc func(w http.ResponseWriter, req *http.Request, userID string) error

type methods = route.Methods

// SetAccessLog turns the access log on (nil: off); see route.SetAccessLog.
func (r *Repo) SetAccessLog(l *slog.Logger) { r.router.SetAccessLog(l) }

// handle registers path; a /_matrix/media/v3 path is also served under
// the r0 prefix with the same handlers (and the same legacy switch), as
// Synapse still does for clients written before Matrix 1.1.
func (r *Repo) handle(path string, ms methods) {
	r.router.Handle(path, ms)
	if rest, ok := strings.CutPrefix(path, mediaV3+"/"); ok {
		r.router.Handle(mediaR0+"/"+rest, ms)
	}
}

// Routes lists the repository's paths and methods (see route.Router.Routes).
func (r *Repo) Routes() []route.Route { return r.router.Routes() }

// Handler serves every media path under /_matrix/media/ and
// /_matrix/client/v1/media/, with CORS and the security headers every
// media response carries.
func (r *Repo) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		route.CORS(h)
		// The spec's recommended policy plus media-src: even a file served
		// straight to a browser tab can run no script and load nothing.
		h.Set("Content-Security-Policy", "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")
		h.Set("X-Content-Type-Options", "nosniff")
		r.router.ServeHTTP(w, req)
	})
}

// authed runs h with the caller's user ID, refusing requests without a
// valid access token.
func (r *Repo) authed(h userFunc) handlerFunc {
	return func(w http.ResponseWriter, req *http.Request) error {
		if r.p.Auth == nil {
			return errors.New("media: no authenticator configured")
		}
		tok := route.AccessToken(req)
		if tok == "" {
			return mxerr.New(mxerr.MissingToken, "Missing access token")
		}
		user, err := r.p.Auth.Authenticate(req.Context(), tok, r.clientIP(req))
		if err != nil {
			return err
		}
		route.SetUser(req, user)
		return h(w, req, user)
	}
}

// anonymous runs h without asking for a token (legacy downloads).
func (r *Repo) anonymous(h userFunc) handlerFunc {
	return func(w http.ResponseWriter, req *http.Request) error { return h(w, req, "") }
}

// legacy answers 404 when the deprecated endpoints are switched off
// ("frozen", Client-Server API "Client behaviour" of the content
// repository).
func (r *Repo) legacy(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, req *http.Request) error {
		if !r.cfg.LegacyEndpoints {
			return mxerr.NotFoundf("Unauthenticated media is disabled on this server: use /_matrix/client/v1/media")
		}
		return h(w, req)
	}
}

func (r *Repo) clientIP(req *http.Request) string {
	if r.p.ClientIP != nil {
		return r.p.ClientIP(req)
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

func (r *Repo) config(w http.ResponseWriter, _ *http.Request, _ string) error {
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"m.upload.size": r.cfg.MaxUploadBytes})
	return nil
}

func (r *Repo) now() time.Time { return r.p.Now() }

func (r *Repo) mxc(id string) string { return "mxc://" + r.p.ServerName + "/" + id }
