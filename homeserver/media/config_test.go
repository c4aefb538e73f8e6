package media

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDefaultsAreValid(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MaxUploadBytes != 100<<20 || c.UserQuotaBytes != 5<<30 || c.URLPreview.Enabled || !c.LegacyEndpoints ||
		!c.AuthenticatedMedia || c.RestrictToRooms || c.Thumbnails.MaxDecodeBytes != 128<<20 || c.Thumbnails.MemoryBudget != 256<<20 {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Defaults()
	c.MaxUploadBytes = 0
	c.UserQuotaBytes = -1
	c.PendingUploads.MaxPerUser = 0
	c.PendingUploads.Expiry = Duration(time.Second)
	c.Thumbnails.Sizes = []ThumbnailSize{{0, 32, "crop"}, {32, 32, "stretch"}, {96, 96, "crop"}, {96, 96, "crop"}}
	c.Thumbnails.MaxPixels = 10
	c.Thumbnails.MaxDecodeBytes = 1
	c.Thumbnails.MemoryBudget = 0
	c.URLPreview.MaxBytes = 1
	c.URLPreview.Timeout = 0
	c.URLPreview.AllowNetworks = []string{"127.0.0.1/32", "localhost"}
	c.Retention.UnreferencedAfter = Duration(time.Minute)
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, key := range []string{
		"media.max_upload_bytes", "media.user_quota_bytes", "media.pending_uploads.max_per_user",
		"media.pending_uploads.expiry", "media.thumbnails.sizes[0]", "media.thumbnails.sizes[1].method",
		"media.thumbnails.sizes[3]", "media.thumbnails.max_pixels", "media.thumbnails.max_decode_bytes",
		"media.thumbnails.memory_budget", "media.url_preview.max_bytes",
		"media.url_preview.timeout", "media.url_preview.allow_networks[1]", "media.retention.unreferenced_after",
	} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("no problem reported for %s in:\n%v", key, err)
		}
	}
	c = Defaults()
	c.UserQuotaBytes = c.MaxUploadBytes - 1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "media.user_quota_bytes") {
		t.Fatalf("quota below the upload limit: %v", err)
	}
	c.UserQuotaBytes = 0 // no quota
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Thumbnails.MemoryBudget = c.Thumbnails.MaxDecodeBytes - 1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "media.thumbnails.memory_budget") {
		t.Fatalf("a budget that the largest image cannot fit: %v", err)
	}
}

func TestConfigYAML(t *testing.T) {
	c := Defaults()
	dec := yaml.NewDecoder(strings.NewReader(`
legacy_endpoints: false
authenticated_media: false
restrict_to_rooms: true
max_upload_bytes: 52428800
pending_uploads: {expiry: 2d}
thumbnails:
  sizes:
    - {width: 64, height: 64, method: crop}
  max_decode_bytes: 33554432
  memory_budget: 67108864
url_preview: {enabled: true, timeout: 5s}
retention: {unreferenced_after: 30d}
`))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.LegacyEndpoints || c.AuthenticatedMedia || !c.RestrictToRooms || c.Thumbnails.MaxDecodeBytes != 32<<20 ||
		c.Thumbnails.MemoryBudget != 64<<20 || c.MaxUploadBytes != 50<<20 || c.PendingUploads.Expiry.D() != 48*time.Hour ||
		len(c.Thumbnails.Sizes) != 1 || !c.URLPreview.Enabled || c.URLPreview.Timeout.D() != 5*time.Second ||
		c.Retention.UnreferencedAfter.D() != 30*24*time.Hour || c.UserQuotaBytes != 5<<30 {
		t.Fatalf("decoded = %+v", c)
	}
	out, err := yaml.Marshal(Defaults())
	if err != nil || !strings.Contains(string(out), "unreferenced_after: 90d") || !strings.Contains(string(out), "timeout: 10s") {
		t.Fatalf("marshalled defaults:\n%s %v", out, err)
	}
	bad := yaml.NewDecoder(strings.NewReader("retention: {unreferenced_after: soon}\n"))
	if err := bad.Decode(&c); err == nil {
		t.Fatal("bad duration accepted")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "0d": 0, "36h": 36 * time.Hour, "30m": 30 * time.Minute, " 1h30m ": 90 * time.Minute,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "-3d", "-1h", "90", "ninety days", "99999d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}
