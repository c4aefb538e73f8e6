package signaling

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// LegacySlotID is the MatrixRTC slot of a room's one call, which the
// legacy /sfu/get request implies (lk-jwt-service does the same, so legacy
// and current clients of one call meet in one LiveKit room).
const LegacySlotID = "m.call#ROOM"

// LiveKitRoomAlias names the LiveKit room of a MatrixRTC slot in a Matrix
// room: unpadded base64 of the SHA-256 of the canonical JSON array
// [roomID, slotID]. This is lk-jwt-service's derivation, given as the
// example in MSC4195 ("LiveKit room names"), so an external LiveKit
// fronted by lk-jwt-service and Salon's SFU put a call in the same room.
func LiveKitRoomAlias(roomID, slotID string) string {
	return hashStrings(roomID, slotID)
}

// LiveKitIdentity is the LiveKit participant identity of a MatrixRTC
// member (the m.rtc.member shape): unpadded base64 of the SHA-256 of the
// canonical JSON array [userID, deviceID, memberID], as lk-jwt-service
// derives it and matrix-js-sdk's computeRtcIdentityRaw checks it (its test
// vector: "@alice:example.com", "DEVICE123", "memberABC" →
// "J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU").
func LiveKitIdentity(userID, deviceID, memberID string) string {
	return hashStrings(userID, deviceID, memberID)
}

// LegacyLiveKitIdentity is the identity of a member of the legacy
// org.matrix.msc3401.call.member shape, "userID:deviceID", as
// lk-jwt-service's /sfu/get and matrix-js-sdk use it.
func LegacyLiveKitIdentity(userID, deviceID string) string {
	return userID + ":" + deviceID
}

// hashStrings is unpadded standard base64 of SHA-256 of the canonical JSON
// array of ss.
func hashStrings(ss ...string) string {
	var b strings.Builder
	b.Grow(16 + 8*len(ss))
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		writeCanonicalString(&b, s)
	}
	b.WriteByte(']')
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawStdEncoding.EncodeToString(sum[:])
}

// writeCanonicalString writes s as a JSON string the way Matrix canonical
// JSON (and JavaScript's JSON.stringify) does: only '"', '\\' and control
// characters are escaped, with the short forms where JSON has them;
// everything else is raw UTF-8. Go's json.Marshal, which lk-jwt-service
// uses, differs only in also escaping <, >, & and U+2028/U+2029 — which do
// not occur in real room, user, device or member IDs.
func writeCanonicalString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			b.WriteRune(r) // invalid UTF-8 becomes U+FFFD, as JSON decoding would have made it
			i += size
			continue
		}
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
		i++
	}
	b.WriteByte('"')
}
