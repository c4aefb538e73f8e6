package identity

import (
	"fmt"
	"strings"
)

// NormaliseLocalpart makes a Matrix localpart of a directory name: it is
// lower-cased, and every byte outside the localpart grammar (a-z, 0-9 and
// ._=-/+) is written as =xx, its hex value — the escaping of the spec's
// appendix "Mapping from other character sets", so distinct names stay
// distinct ("Jürgen" → "j=c3=bcrgen", "o'neil" → "o=27neil"). Surrounding
// white space is dropped. It returns "" for a name with nothing left.
func NormaliseLocalpart(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', strings.IndexByte("._-/+", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02x", c)
		}
	}
	lp := b.String()
	if lp == "." || lp == ".." {
		return ""
	}
	return lp
}
