package store

import (
	"context"
	"errors"
)

// ErrQuotaExceeded is returned when storing a row would take a user past a
// limit the caller passed in (bytes of media, pending uploads).
var ErrQuotaExceeded = errors.New("store: quota exceeded")

// MediaMeta is one media ID of this server (mxc://SERVER/MediaID). Content
// is stored once per SHA-256 (a media blob); many media IDs may share it.
type MediaMeta struct {
	MediaID string
	// UserID uploaded it ("" for media the server fetched itself, such as
	// URL preview images).
	UserID string
	// SHA256 names the content; nil while an asynchronous upload
	// (POST /_matrix/media/v1/create) is pending.
	SHA256      []byte
	Size        int64
	ContentType string
	UploadName  string // the client's filename, sanitised; "" for none
	CreatedTS   int64  // ms since the epoch
	UploadedTS  int64  // 0 while pending
	// ExpiresTS is when a pending reservation lapses (0 for uploaded media).
	ExpiresTS int64
	// Referenced is set once an event referencing the media was stored;
	// referenced media is never purged by age.
	Referenced bool
	// Restricted media is served only through the authenticated endpoints
	// (/_matrix/client/v1/media): it was uploaded while the server's
	// "authenticated media freeze" was on. Media from before is not.
	Restricted bool
}

// MediaRef records that a stored event references media (its content's
// url, avatar_url, info.thumbnail_url, file.url or
// info.thumbnail_file.url).
type MediaRef struct {
	MXC     string // mxc://server/mediaId
	RoomID  string
	EventID string
}

// Pending reports whether the media ID was reserved but has no content yet.
func (m MediaMeta) Pending() bool { return m.UploadedTS == 0 }

// MediaThumbnail is a generated thumbnail of a media blob: thumbnails belong
// to content, not to media IDs, so identical uploads share them.
type MediaThumbnail struct {
	SourceSHA256 []byte
	Width        int
	Height       int
	Method       string // crop or scale: the configured size it was made for
	ContentType  string
	SHA256       []byte // the thumbnail's own blob
	Size         int64
	CreatedTS    int64
}

// MediaPurge is what one PurgeMedia call removed.
type MediaPurge struct {
	Media int   // media IDs deleted
	Blobs int   // blobs (content and thumbnails) no longer referenced, removed
	Bytes int64 // their total size
}

// Media stores the media repository's metadata. Blob bytes live outside the
// database; the methods that create or delete a blob take a callback that
// the store runs inside its transaction, while it holds the blob's row, so
// that an upload of some content and the purge of the same content cannot
// interleave (the upload would otherwise point at a file the purge removes).
type Media interface {
	// ReserveMedia stores a pending media ID (POST /_matrix/media/v1/create).
	// It returns ErrQuotaExceeded when the user already has maxPending
	// pending, unexpired reservations at m.CreatedTS (maxPending 0: no
	// limit), and ErrExists when the ID is taken.
	ReserveMedia(ctx context.Context, m MediaMeta, maxPending int) error
	// CommitMedia records uploaded content under m.MediaID: a new row, or
	// the filling of the uploader's pending reservation. It runs place
	// (which must make the blob m.SHA256 durable) inside the transaction
	// and rolls back if place fails. It returns ErrQuotaExceeded when the
	// user's media would exceed quota bytes (0: no quota), ErrExists when
	// the ID already has content, and ErrNotFound when a reservation of the
	// ID is another user's or expired before m.UploadedTS.
	CommitMedia(ctx context.Context, m MediaMeta, quota int64, place func() error) error
	// MediaMeta returns the row of a media ID, or ErrNotFound.
	MediaMeta(ctx context.Context, mediaID string) (MediaMeta, error)
	// MediaUsage is the bytes of uploaded media of a user.
	MediaUsage(ctx context.Context, userID string) (int64, error)
	// MediaThumbnails lists the thumbnails of a blob.
	MediaThumbnails(ctx context.Context, sourceSHA256 []byte) ([]MediaThumbnail, error)
	// AddMediaThumbnail records a thumbnail, running place inside the
	// transaction like CommitMedia. Adding one that exists already is not
	// an error. It returns ErrNotFound when the source blob was purged.
	AddMediaThumbnail(ctx context.Context, t MediaThumbnail, place func() error) error
	// AddMediaRefs records references of stored events to media; one
	// recorded already is not an error.
	AddMediaRefs(ctx context.Context, refs []MediaRef) error
	// MediaRefs lists up to limit events that reference an mxc:// URI,
	// ordered by room and event ID.
	MediaRefs(ctx context.Context, mxc string, limit int) ([]MediaRef, error)
	// MarkMediaReferenced flags media IDs as referenced by an event; unknown
	// IDs are ignored.
	MarkMediaReferenced(ctx context.Context, mediaIDs []string) error
	// PurgeMedia deletes up to limit media IDs that are unreferenced and
	// were created before beforeTS, or are reservations that expired
	// before nowTS. Blobs (and thumbnails) that no other media ID uses any
	// more are deleted too: remove is called for each inside the
	// transaction.
	PurgeMedia(ctx context.Context, beforeTS, nowTS int64, limit int, remove func(sha256 []byte) error) (MediaPurge, error)
}
