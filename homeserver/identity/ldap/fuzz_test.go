package ldap

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// FuzzFilterEscape: whatever a user types as a login name or a search
// term, the filter Salon sends is one well-formed assertion whose value is
// exactly what was typed (RFC 4515), so `*)(uid=*` cannot widen a search.
func FuzzFilterEscape(f *testing.F) {
	for _, s := range []string{"ana", "*)(uid=*", `\2a`, "a\x00b", "(|(objectClass=*))", "é*é", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		p, err := goldap.CompileFilter(eq("uid", v))
		if err != nil {
			t.Fatalf("eq(%q): %v", v, err)
		}
		if p.Tag != goldap.FilterEqualityMatch || len(p.Children) != 2 || p.Children[1].Data.String() != v {
			t.Fatalf("eq(%q) = %s", v, eq("uid", v))
		}
		p, err = goldap.CompileFilter("(cn=*" + escapeSubstring(v) + "*)")
		if err != nil {
			t.Fatalf("substring %q: %v", v, err)
		}
		if p.Tag != goldap.FilterSubstrings {
			t.Fatalf("substring %q: tag %d", v, p.Tag)
		}
		var got string
		for _, c := range p.Children[1].Children {
			got += c.Data.String()
		}
		if got != v {
			t.Fatalf("substring %q reads back %q", v, got)
		}
		normaliseDN(v)
	})
}
