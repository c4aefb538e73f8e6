package federation

import (
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/salonhq/salon/homeserver/glob"
)

// ACL is a room's m.room.server_acl as the Client-Server API's "Server
// Access Control Lists" section defines it: a server is refused when it is
// an IP literal and allow_ip_literals is false, when it matches a deny
// glob, or when it matches no allow glob. Globs ('*', '?') compare
// case-insensitively against the server name without its port. The zero
// ACL (no event) allows everyone.
type ACL struct {
	present         bool
	allowIPLiterals bool
	allow, deny     []glob.Pattern
}

// ParseACL reads an m.room.server_acl content; nil or empty content is no
// ACL. Fields of the wrong type count as absent (allow: nobody, deny:
// nobody, allow_ip_literals: true), as Synapse reads them, so an event
// whose allow is not a list refuses every server.
func ParseACL(content json.RawMessage) ACL {
	if len(content) == 0 || string(content) == "null" {
		return ACL{}
	}
	var c map[string]json.RawMessage
	if json.Unmarshal(content, &c) != nil {
		return ACL{}
	}
	a := ACL{present: true, allowIPLiterals: true}
	if raw, ok := c["allow_ip_literals"]; ok {
		var b bool
		if json.Unmarshal(raw, &b) == nil {
			a.allowIPLiterals = b
		}
	}
	globs := func(raw json.RawMessage) []glob.Pattern {
		var list []any
		if json.Unmarshal(raw, &list) != nil {
			return nil
		}
		var out []glob.Pattern
		for _, v := range list {
			if s, ok := v.(string); ok {
				out = append(out, glob.CompileFold(s))
			}
		}
		return out
	}
	a.allow, a.deny = globs(c["allow"]), globs(c["deny"])
	return a
}

// Allows reports whether the ACL lets server take part in the room.
func (a ACL) Allows(server string) bool {
	if !a.present {
		return true
	}
	host := hostOf(server)
	if !a.allowIPLiterals && isIPLiteral(host) {
		return false
	}
	for i := range a.deny {
		if a.deny[i].MatchString(host) {
			return false
		}
	}
	for i := range a.allow {
		if a.allow[i].MatchString(host) {
			return true
		}
	}
	return false
}

// ACLAllows is ParseACL(content).Allows(server).
func ACLAllows(content json.RawMessage, server string) bool { return ParseACL(content).Allows(server) }

// isIPLiteral reports whether host is an IPv4 address or a bracketed
// IPv6 address.
func isIPLiteral(host string) bool {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		_, err := netip.ParseAddr(host[1 : len(host)-1])
		return err == nil
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Is4()
}
