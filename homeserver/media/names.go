package media

import (
	"crypto/rand"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newMediaID returns 24 random characters (≈143 bits).
func newMediaID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		// 256 = 4·62 + 8: the tiny bias toward the first 8 letters does
		// not matter for an unguessable ID of this length.
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b[:])
}

// validMediaID applies the spec's rule for the media-id of mxc:// URIs:
// only A-Za-z0-9, _ and - ("Security considerations" of the content
// repository), so an ID can never traverse a path.
func validMediaID(id string) bool {
	if id == "" || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseMXC splits mxc://server/id.
func parseMXC(uri string) (server, id string, ok bool) {
	rest, ok := strings.CutPrefix(uri, "mxc://")
	if !ok {
		return "", "", false
	}
	server, id, ok = strings.Cut(rest, "/")
	if !ok || server == "" || !validMediaID(id) {
		return "", "", false
	}
	return server, id, true
}

const defaultContentType = "application/octet-stream"

// normalContentType returns the upload's Content-Type in canonical form,
// or application/octet-stream when it is missing or unparsable (Matrix
// 1.12: the header is optional with that default).
func normalContentType(ct string) string {
	if strings.TrimSpace(ct) == "" || len(ct) > 255 {
		return defaultContentType
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return defaultContentType
	}
	// Keep only the charset: other parameters are not ours to vouch for.
	keep := map[string]string{}
	if cs, ok := params["charset"]; ok && strings.HasPrefix(mt, "text/") {
		keep["charset"] = cs
	}
	out := mime.FormatMediaType(mt, keep)
	if out == "" {
		return defaultContentType
	}
	return out
}

// inlineTypes may be shown in the browser (Content-Disposition: inline).
// This is the image, audio and video part of the spec's list for "Serving
// inline content"; text types and JSON are served as attachments too, and
// image/svg+xml (which can carry script) is not here.
var inlineTypes = map[string]bool{
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true,
	"image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true, "audio/ogg": true,
	"audio/wave": true, "audio/wav": true, "audio/x-wav": true, "audio/x-pn-wav": true,
	"audio/flac": true, "audio/x-flac": true,
}

// disposition is the Content-Disposition of a download: inline only for
// the safe types.
func disposition(contentType, filename string) string {
	kind := "attachment"
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && inlineTypes[mt] {
		kind = "inline"
	}
	if filename == "" {
		return kind
	}
	return kind + "; " + filenameParam(filename)
}

// filenameParam writes filename="…" for printable ASCII names (quoted, as
// the spec's examples are) and RFC 6266's filename*=utf-8”… otherwise.
func filenameParam(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] >= 0x7f {
			ascii = false
			break
		}
	}
	var b strings.Builder
	if ascii {
		b.WriteString(`filename="`)
		for i := 0; i < len(name); i++ {
			if name[i] == '"' || name[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(name[i])
		}
		b.WriteByte('"')
		return b.String()
	}
	b.WriteString("filename*=utf-8''")
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		// RFC 5987 attr-char
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// maxNameBytes bounds a stored file name.
const maxNameBytes = 255

// sanitiseFilename makes a client's file name safe to store and echo in a
// header: valid UTF-8, no control characters, no path separators (they
// become _), no leading dots, at most 255 bytes. It is only ever shown,
// never used as a path. "" means no name.
func sanitiseFilename(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			b.WriteByte('_')
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\uFEFF' ||
			unicode.Is(unicode.Bidi_Control, r):
			// dropped: control characters, line separators and bidi
			// overrides that would disguise an extension
		default:
			b.WriteRune(r)
		}
	}
	s := strings.TrimSpace(b.String())
	s = strings.TrimLeft(s, ".")
	s = strings.TrimSpace(s)
	if len(s) > maxNameBytes {
		cut := maxNameBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
