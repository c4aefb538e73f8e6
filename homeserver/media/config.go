package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is the media: section of salon.yaml. It is decoded over Defaults
// and checked whole by Validate.
type Config struct {
	// LegacyEndpoints serves the deprecated unauthenticated
	// /_matrix/media/v3/download and /thumbnail (and v3/config,
	// v3/preview_url) for clients older than Matrix 1.11. Off "freezes"
	// unauthenticated media as the spec recommends: those answer 404.
	LegacyEndpoints bool `yaml:"legacy_endpoints"`
	// AuthenticatedMedia is the "authenticated media freeze" (as Synapse's
	// enable_authenticated_media): media uploaded while it is on is served
	// only through the authenticated /_matrix/client/v1/media endpoints;
	// the legacy ones keep serving only media uploaded before.
	AuthenticatedMedia bool `yaml:"authenticated_media"`
	// RestrictToRooms serves media that events reference only to its
	// uploader and to users who may see one of those events (beyond the
	// spec, which serves any media to any logged-in user).
	RestrictToRooms bool `yaml:"restrict_to_rooms"`
	// MaxUploadBytes is the largest upload (M_TOO_LARGE above it).
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// UserQuotaBytes caps the total size of one user's uploads; 0 means no
	// quota.
	UserQuotaBytes int64 `yaml:"user_quota_bytes"`
	// PendingUploads bounds the asynchronous uploads (POST
	// /_matrix/media/v1/create) a user may have open at once, and how long
	// a created media ID waits for its content.
	PendingUploads PendingConfig    `yaml:"pending_uploads"`
	Thumbnails     ThumbnailConfig  `yaml:"thumbnails"`
	URLPreview     URLPreviewConfig `yaml:"url_preview"`
	Retention      RetentionConfig  `yaml:"retention"`
}

// PendingConfig limits asynchronous uploads.
type PendingConfig struct {
	MaxPerUser int      `yaml:"max_per_user"`
	Expiry     Duration `yaml:"expiry"`
}

// ThumbnailConfig says which thumbnails are made and of what.
type ThumbnailConfig struct {
	// Sizes are the thumbnails the server makes; a request is answered
	// with the nearest size at least as large (Synapse's choice).
	Sizes []ThumbnailSize `yaml:"sizes"`
	// MaxPixels refuses to thumbnail larger images (width × height, read
	// from the header before decoding), so a small file declaring a huge
	// image cannot exhaust memory.
	MaxPixels int64 `yaml:"max_pixels"`
	// MaxDecodeBytes refuses to thumbnail images that would take more
	// memory to decode: width × height × the bytes a pixel takes in the
	// decoder (8 for a 16-bit RGBA PNG), read from the header.
	MaxDecodeBytes int64 `yaml:"max_decode_bytes"`
	// MemoryBudget bounds the memory of all thumbnails being made at
	// once; requests beyond it wait their turn.
	MemoryBudget int64 `yaml:"memory_budget"`
}

// ThumbnailSize is one size the server thumbnails to.
type ThumbnailSize struct {
	Width  int    `yaml:"width"`
	Height int    `yaml:"height"`
	Method string `yaml:"method"` // crop or scale
}

// URLPreviewConfig governs GET /_matrix/client/v1/media/preview_url. The
// server fetches pages on users' behalf, so this is off by default; when on,
// only public addresses are ever contacted.
type URLPreviewConfig struct {
	Enabled bool `yaml:"enabled"`
	// MaxBytes bounds what is read of a page or a preview image.
	MaxBytes int64 `yaml:"max_bytes"`
	// Timeout bounds one whole preview: DNS, connect, redirects, body.
	Timeout Duration `yaml:"timeout"`
	// AllowNetworks are CIDR prefixes (127.0.0.1/32) previews may reach
	// although they are not public. Empty by default: any user could make
	// the server fetch from a listed network, so list one only in a test
	// deployment (make conformance lists its loopback test server).
	AllowNetworks []string `yaml:"allow_networks"`
}

// RetentionConfig is the default of `salon media purge`.
type RetentionConfig struct {
	// UnreferencedAfter is how old media must be, with no event referencing
	// it, before `salon media purge` deletes it.
	UnreferencedAfter Duration `yaml:"unreferenced_after"`
}

// DefaultThumbnailSizes are the sizes the spec says servers SHOULD make
// (Client-Server API, "Thumbnails").
func DefaultThumbnailSizes() []ThumbnailSize {
	return []ThumbnailSize{
		{32, 32, "crop"},
		{96, 96, "crop"},
		{320, 240, "scale"},
		{640, 480, "scale"},
		{800, 600, "scale"},
	}
}

// Defaults returns the built-in media configuration.
func Defaults() Config {
	return Config{
		LegacyEndpoints:    true,
		AuthenticatedMedia: true,
		MaxUploadBytes:     100 << 20,
		UserQuotaBytes:     5 << 30,
		PendingUploads:     PendingConfig{MaxPerUser: 10, Expiry: Duration(24 * time.Hour)},
		Thumbnails: ThumbnailConfig{Sizes: DefaultThumbnailSizes(), MaxPixels: 32_000_000,
			MaxDecodeBytes: 128 << 20, MemoryBudget: 256 << 20},
		URLPreview: URLPreviewConfig{Enabled: false, MaxBytes: 4 << 20, Timeout: Duration(10 * time.Second)},
		Retention:  RetentionConfig{UnreferencedAfter: Duration(90 * 24 * time.Hour)},
	}
}

// Validate checks the whole section and reports every problem, each with
// its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("media.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.MaxUploadBytes < 1 || c.MaxUploadBytes > 1<<40 {
		bad("max_upload_bytes", "%d must be between 1 and 1099511627776 (1 TiB)", c.MaxUploadBytes)
	}
	if c.UserQuotaBytes < 0 {
		bad("user_quota_bytes", "%d must be ≥ 0 (0: no quota)", c.UserQuotaBytes)
	} else if c.UserQuotaBytes > 0 && c.UserQuotaBytes < c.MaxUploadBytes {
		bad("user_quota_bytes", "%d is smaller than max_upload_bytes (%d): the largest upload could never fit", c.UserQuotaBytes, c.MaxUploadBytes)
	}
	if c.PendingUploads.MaxPerUser < 1 || c.PendingUploads.MaxPerUser > 10_000 {
		bad("pending_uploads.max_per_user", "%d must be between 1 and 10000", c.PendingUploads.MaxPerUser)
	}
	if d := c.PendingUploads.Expiry.D(); d < time.Minute || d > 7*24*time.Hour {
		bad("pending_uploads.expiry", "%s must be between 1m and 7d", c.PendingUploads.Expiry)
	}
	if len(c.Thumbnails.Sizes) == 0 {
		bad("thumbnails.sizes", "must list at least one size")
	}
	seen := map[ThumbnailSize]bool{}
	for i, s := range c.Thumbnails.Sizes {
		key := fmt.Sprintf("thumbnails.sizes[%d]", i)
		if s.Width < 1 || s.Width > 4096 || s.Height < 1 || s.Height > 4096 {
			bad(key, "%dx%d: width and height must be between 1 and 4096", s.Width, s.Height)
		}
		if s.Method != "crop" && s.Method != "scale" {
			bad(key+".method", "%q must be crop or scale", s.Method)
		}
		if seen[s] {
			bad(key, "%dx%d %s is listed twice", s.Width, s.Height, s.Method)
		}
		seen[s] = true
	}
	if c.Thumbnails.MaxPixels < 1<<20 || c.Thumbnails.MaxPixels > 200_000_000 {
		bad("thumbnails.max_pixels", "%d must be between 1048576 and 200000000", c.Thumbnails.MaxPixels)
	}
	if c.Thumbnails.MaxDecodeBytes < 1<<20 || c.Thumbnails.MaxDecodeBytes > 16<<30 {
		bad("thumbnails.max_decode_bytes", "%d must be between 1048576 (1 MiB) and 17179869184 (16 GiB)", c.Thumbnails.MaxDecodeBytes)
	}
	if c.Thumbnails.MemoryBudget < c.Thumbnails.MaxDecodeBytes || c.Thumbnails.MemoryBudget > 64<<30 {
		bad("thumbnails.memory_budget", "%d must be at least max_decode_bytes (%d) and at most 68719476736 (64 GiB)", c.Thumbnails.MemoryBudget, c.Thumbnails.MaxDecodeBytes)
	}
	if c.URLPreview.MaxBytes < 4096 || c.URLPreview.MaxBytes > 64<<20 {
		bad("url_preview.max_bytes", "%d must be between 4096 and 67108864", c.URLPreview.MaxBytes)
	}
	if d := c.URLPreview.Timeout.D(); d < 100*time.Millisecond || d > time.Minute {
		bad("url_preview.timeout", "%s must be between 100ms and 1m", c.URLPreview.Timeout)
	}
	for i, n := range c.URLPreview.AllowNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			bad(fmt.Sprintf("url_preview.allow_networks[%d]", i), "%q must be a CIDR prefix such as 127.0.0.1/32", n)
		}
	}
	if d := c.Retention.UnreferencedAfter.D(); d < time.Hour {
		bad("retention.unreferenced_after", "%s must be at least 1h", c.Retention.UnreferencedAfter)
	}
	return errors.Join(errs...)
}

// Duration is a time.Duration written as in Go ("36h", "90m") or in days
// ("90d"), the unit retention periods are thought in.
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes whole days as "Nd".
func (d Duration) String() string {
	day := 24 * time.Hour
	if t := time.Duration(d); t > 0 && t%day == 0 {
		return strconv.FormatInt(int64(t/day), 10) + "d"
	}
	return time.Duration(d).String()
}

// MarshalText writes the duration as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the forms ParseDuration accepts.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration reads "90d", "12h", "30m" or any time.ParseDuration form.
// Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseInt(n, 10, 64)
		if err != nil || days < 0 || days > 100*365 {
			return 0, fmt.Errorf("invalid duration %q: want a whole number of days such as 90d", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid duration %q: want such as 90d, 36h or 30m", s)
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return d, nil
}
