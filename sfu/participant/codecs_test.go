package participant

import (
	"strings"
	"testing"
)

// TestAnnouncedCodecs: what LiveKit clients are told matches what the
// media engine registers — every registered mime once, nothing else.
func TestAnnouncedCodecs(t *testing.T) {
	want := []string{"audio/opus", "audio/red", "video/vp8", "video/vp9", "video/h264", "video/av1"}
	got := AnnouncedCodecs()
	if len(got) != len(want) {
		t.Fatalf("announced %d codecs, want %d: %v", len(got), len(want), got)
	}
	for i, c := range got {
		if strings.ToLower(c.Mime) != want[i] {
			t.Errorf("codec %d: %s, want %s", i, c.Mime, want[i])
		}
	}
	registered := map[string]bool{}
	for _, c := range append(append(AudioCodecs[:0:0], AudioCodecs...), VideoCodecs...) {
		registered[strings.ToLower(c.MimeType)] = true
	}
	for _, c := range got {
		if !registered[strings.ToLower(c.Mime)] {
			t.Errorf("%s announced but not registered", c.Mime)
		}
	}
}
