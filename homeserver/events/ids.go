package events

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Identifier grammars from the appendices ("Identifier Grammar"). The
// readers here accept what the spec says servers MUST accept (historical user
// IDs included); ValidLocalpart and ValidCompliantUserID are the stricter
// rules for identifiers Salon creates.

// maxIDBytes is the limit on user IDs, room IDs, room aliases and event IDs,
// sigil and domain included.
const maxIDBytes = 255

// ValidServerName reports whether s is hostname [":" port], where hostname
// is a dotted-quad IPv4 address, a bracketed IPv6 address, or a DNS name of
// labels made of letters, digits and hyphens.
func ValidServerName(s string) bool {
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return false
		}
		return validIPv6(host)
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if !validPort(s[i+1:]) {
			return false
		}
		host = s[:i]
	}
	return validHostname(host)
}

// validPort is the grammar's port = 1*5DIGIT.
func validPort(p string) bool {
	if len(p) < 1 || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// validIPv6 is the grammar's IPv6address = 2*45IPv6char, which must also be
// an RFC 3513 address.
func validIPv6(h string) bool {
	if len(h) < 2 || len(h) > 45 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !isDigit(c) && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') && c != ':' && c != '.' {
			return false
		}
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Is6()
}

// validHostname accepts a dotted-quad IPv4 literal with each part in 0-255,
// or a DNS name of at most 255 characters whose dot-separated labels are
// non-empty runs of letters, digits and hyphens.
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 255 {
		return false
	}
	labels := strings.Split(h, ".")
	numeric := len(labels) == 4
	for _, l := range labels {
		if l == "" {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !isDigit(c) {
				numeric = false
			}
			if !isDigit(c) && !isAlpha(c) && c != '-' {
				return false
			}
		}
	}
	if numeric {
		// Four numeric labels make an IPv4 literal: 1*3DIGIT each, 0-255.
		for _, l := range labels {
			if len(l) > 3 || atoi(l) > 255 {
				return false
			}
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// splitID splits sigil+local:server at the first colon (localparts cannot
// contain one) and checks the sigil, the overall length and the server
// name.
func splitID(s string, sigil byte) (local string, ok bool) {
	if len(s) > maxIDBytes || len(s) < 2 || s[0] != sigil {
		return "", false
	}
	i := strings.IndexByte(s, ':')
	if i < 0 || !ValidServerName(s[i+1:]) {
		return "", false
	}
	return s[1:i], true
}

// ServerOf is the server name of a user ID, room ID, alias or (room
// version 1 and 2) event ID: what follows its first ':', or "" if none.
func ServerOf(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		return id[i+1:]
	}
	return ""
}

// opaque reports whether s is valid UTF-8 without NUL: what the spec allows
// in historical user ID localparts and room ID localparts.
func opaque(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// ValidUserID reports whether s is a user ID servers must accept:
// "@" localpart ":" server_name, at most 255 bytes, with the historical
// localpart grammar (any UTF-8 but ':' and NUL, possibly empty). Use
// ValidCompliantUserID for IDs Salon creates.
func ValidUserID(s string) bool {
	local, ok := splitID(s, '@')
	return ok && opaque(local)
}

// ValidLocalpart reports whether s may be the localpart of a new user:
// non-empty and made of a-z, 0-9, '.', '_', '=', '-', '/' and '+'. The whole
// user ID must still fit in 255 bytes: check it with ValidCompliantUserID.
func ValidLocalpart(s string) bool {
	if s == "" || len(s) > maxIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', isDigit(c):
		case c == '.', c == '_', c == '=', c == '-', c == '/', c == '+':
		default:
			return false
		}
	}
	return true
}

// ValidCompliantUserID reports whether s is a user ID in the current
// grammar: "@" ValidLocalpart ":" server_name, at most 255 bytes.
func ValidCompliantUserID(s string) bool {
	local, ok := splitID(s, '@')
	return ok && ValidLocalpart(local)
}

// ValidRoomID reports whether s is a room ID of some room version Salon
// knows: "!" opaque_id ":" server_name, at most 255 bytes, the opaque_id
// being any UTF-8 but ':' and NUL; or, from v12 (MSC4291), "!" and the
// unpadded URL-safe base64 of a sha256 hash, without a domain.
func ValidRoomID(s string) bool {
	if isHashRoomID(s) {
		return true
	}
	local, ok := splitID(s, '!')
	return ok && opaque(local)
}

// ValidRoomAlias reports whether s is "#" alias ":" server_name, at most 255
// bytes, the alias being non-empty UTF-8 without ':'. NUL is refused too,
// though the spec does not exclude it: no database stores it in text.
func ValidRoomAlias(s string) bool {
	local, ok := splitID(s, '#')
	return ok && local != "" && opaque(local)
}

// ValidEventID reports whether s is "$" followed by at least one character,
// valid UTF-8 without NUL, at most 255 bytes. Both the v1-v3 form
// ("$local:server") and the v4+ reference-hash form pass.
func ValidEventID(s string) bool {
	return len(s) >= 2 && len(s) <= maxIDBytes && s[0] == '$' && opaque(s[1:])
}

// validRoomIDFor reports whether s is a room ID of the form version v uses:
// the hash form from v12, "!" opaque_id ":" server_name before.
func validRoomIDFor(v RoomVersion, s string) bool {
	if v.RoomIDFromCreateEvent() {
		return isHashRoomID(s)
	}
	local, ok := splitID(s, '!')
	return ok && opaque(local)
}
