package participant

import (
	"strings"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"
)

// AnnouncedCodecs is what the SFU tells LiveKit clients it accepts (the
// join response's enabled publish codecs and the room's enabled codecs):
// one entry per mime type of AudioCodecs and VideoCodecs, in their order,
// so the codecs negotiated and the codecs announced cannot drift apart.
// Each call returns new messages (protobuf messages are not shared
// between responses).
func AnnouncedCodecs() []*livekit.Codec {
	var out []*livekit.Codec
	seen := map[string]bool{}
	for _, list := range [][]webrtc.RTPCodecParameters{AudioCodecs, VideoCodecs} {
		for _, c := range list {
			if key := strings.ToLower(c.MimeType); !seen[key] {
				seen[key] = true
				out = append(out, &livekit.Codec{Mime: c.MimeType})
			}
		}
	}
	return out
}
