package glob

import (
	"regexp"
	"strings"
	"testing"
)

func TestGlobWhole(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           bool
	}{
		// The specification's example: lunc?* against content.topic.
		{"lunc?*", "Lunch plans", true},
		{"lunc?*", "LUNCH", true},
		{"lunc?*", " lunch", false},
		{"lunc?*", "lunc", false},

		{"m.room.message", "m.room.message", true},
		{"m.room.message", "M.ROOM.MESSAGE", true},
		{"m.room.message", "m.room.messages", false},
		{"m.room.message", "m.room.messag", false},
		{"m.room.*", "m.room.member", true},
		{"m.room.*", "m.room.", true},
		{"m.room.*", "m.roomx", false},
		{"", "", true},
		{"", "x", false},
		{"*", "", true},
		{"*", "anything at all", true},
		{"?", "", false},
		{"?", "é", true}, // one character, two bytes
		{"??", "é", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"a*b*c", "acb", false},
		{"*a", "bbbba", true},
		{"*a", "bbbab", false},
		{"a**b", "ab", true},
		{"*?*", "", false},
		{"*?*", "x", true},
		{"ÉTÉ", "été", true},         // non-ASCII case folding
		{"straße", "STRASSE", false}, // simple folding only: ß is one character
		{"k", "\u212a", true},        // KELVIN SIGN folds to k
		{"a.b", "a-b", false},        // '.' is no wildcard
		{"[ab]", "a", false},         // nor are brackets
		{"[ab]", "[AB]", true},
		{`\*`, `\x`, true}, // no escapes: a backslash, then a wildcard
		{`\*`, `x`, false},
	}
	for _, tc := range cases {
		g := CompileFold(tc.pattern)
		if got := g.Match([]byte(tc.value)); got != tc.want {
			t.Errorf("%q matches all of %q = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
}

func TestGlobWords(t *testing.T) {
	cases := []struct {
		pattern, body string
		want          bool
	}{
		// The specification's example: ex*ple against content.body.
		{"ex*ple", "An example event.", true},
		{"ex*ple", "exple", true},
		{"ex*ple", "An exciting triple-whammy", true},
		{"ex*ple", "examples", false},
		{"ex*ple", "an_example", false}, // '_' is a word character

		{"alice", "alice", true},
		{"alice", "hi Alice!", true},
		{"alice", "hi ALICE", true},
		{"alice", "malice", false},
		{"alice", "alices", false},
		{"alice", "alice1", false},
		{"alice", "1alice", false},
		{"alice", "@alice:example.org", true},
		{"alice", "alice's", true},
		{"alice", "éalice", true}, // non-ASCII letters are boundaries by the spec's definition
		{"alice", "alice\u212a", true},
		{"alice", "", false},
		{"alice", "ali", false},
		{"alice", "mali alice", true}, // a later occurrence still counts
		{"@room", "@room", true},
		{"@room", "hey @room, look", true},
		{"@room", "hey@room", false},
		{"@room", "@roommate", false},
		{"@room", "@ROOM", true},
		{"cake*lie", "The cake is a lie", true},
		{"cake*lie", "cakes are a lie", true}, // only the ends need boundaries
		{"cake*lie", "pancakes are a lie", false},
		{"cake*lie", "the cake is a lie!", true},
		{"cake*lie", "the cake is a lies", false},
		{"*", "", true},
		{"*", "word", true},
		{"?", "a b", true},
		{"?", "ab", false},
		{"a?c", "x abc x", true},
		{"a?c", "x aXcd x", false},
		{"*lie", "belie", true}, // '*' may swallow word characters
		{"b*", "ab", false},
	}
	for _, tc := range cases {
		g := CompileFold(tc.pattern)
		if got := g.MatchWords([]byte(tc.body)); got != tc.want {
			t.Errorf("%q matches words of %q = %v, want %v", tc.pattern, tc.body, got, tc.want)
		}
	}
}

func TestContainsWordIsLiteral(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       bool
	}{
		{"Alice", "hello alice", true},
		{"A*e", "hello alice", false},
		{"A*e", "hello a*e!", true},
		{"Dr. Who", "ask dr. who.", true},
		{"Dr. Who", "ask dr.who", false},
		{"Ünïcödé", "hi ÜNÏCÖDÉ", true},
		{"bob", "bobby", false},
	} {
		if got := ContainsWord([]byte(tc.body), tc.name); got != tc.want {
			t.Errorf("containsWord(%q, %q) = %v, want %v", tc.body, tc.name, got, tc.want)
		}
	}
}

// A pattern that would backtrack badly stays linear.
func TestGlobNoBacktracking(t *testing.T) {
	body := []byte(strings.Repeat("a ", 20000))
	g := CompileFold("*a*a*a*a*a*a*a*a*a*b")
	if g.MatchWords(body) || g.Match(body) {
		t.Fatal("matched a body without b")
	}
}

// referenceGlob builds the regular expression the specification's glob rules
// describe, as an independent check of the automaton.
func referenceGlob(pattern string, words bool) *regexp.Regexp {
	var b strings.Builder
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if words {
		return regexp.MustCompile(`(?s)(?:^|[^A-Za-z0-9_])(?i:` + b.String() + `)(?:[^A-Za-z0-9_]|$)`)
	}
	return regexp.MustCompile(`(?s)^(?i:` + b.String() + `)$`)
}

func FuzzGlob(f *testing.F) {
	for _, seed := range [][2]string{
		{"lunc?*", "Lunch plans"}, {"ex*ple", "An exciting triple-whammy"},
		{"@room", "hey @room"}, {"a*b?c", "xaxxbyc"}, {"k", "\u212a"},
		{"*", ""}, {"é?", "ÉÉ"}, {"ſ", "S"}, {"a", "\xff"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || !validUTF8(pattern) || !validUTF8(s) {
			t.Skip() // values and patterns reach matching JSON-decoded, so valid
		}
		g := CompileFold(pattern)
		if got, want := g.Match([]byte(s)), referenceGlob(pattern, false).MatchString(s); got != want {
			t.Errorf("%q matches all of %q = %v, regexp says %v", pattern, s, got, want)
		}
		if got, want := g.MatchWords([]byte(s)), referenceGlob(pattern, true).MatchString(s); got != want {
			t.Errorf("%q matches words of %q = %v, regexp says %v", pattern, s, got, want)
		}
		exact := Compile(pattern)
		re := regexp.MustCompile(strings.Replace(referenceGlob(pattern, false).String(), "(?i:", "(?:", 1))
		if got, want := exact.Match([]byte(s)), re.MatchString(s); got != want {
			t.Errorf("%q matches all of %q exactly = %v, regexp says %v", pattern, s, got, want)
		}
	})
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestExact: Compile compares characters exactly (event filters' types),
// with the same wildcards, and Match is Compile for one use.
func TestExact(t *testing.T) {
	for _, tc := range []struct {
		pattern, value string
		want           bool
	}{
		{"m.room.message", "m.room.message", true},
		{"m.room.message", "M.ROOM.MESSAGE", false},
		{"m.room.*", "m.room.member", true},
		{"m.room.*", "M.room.member", false},
		{"*.member", "m.room.member", true},
		{"m.*.member", "m.room.member", true},
		{"m.room.?ember", "m.room.member", true},
		{"m.room.?ember", "m.room.Member", true},
		{"m.room.?ember", "m.room.mEmber", false},
		{"ÉTÉ", "été", false},
		{"k", "\u212a", false},
		{"", "", true},
		{"", "x", false},
		{"*", "", true},
	} {
		g := Compile(tc.pattern)
		if got := g.MatchString(tc.value); got != tc.want {
			t.Errorf("Compile(%q).MatchString(%q) = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
		if got := g.Match([]byte(tc.value)); got != tc.want {
			t.Errorf("Compile(%q).Match(%q) = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
		if got := Match(tc.pattern, tc.value); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
	if !containsWord([]byte("say Hello there"), "Hello", false) || containsWord([]byte("say hello there"), "Hello", false) {
		t.Error("exact word match")
	}
}

// TestMatchAllocates: a pattern matched once (an event filter's type, for
// every event a sync reads) costs no allocation.
func TestMatchAllocates(t *testing.T) {
	for _, p := range []string{"m.room.message", "m.room.*", "*.call.?nvite*"} {
		if n := testing.AllocsPerRun(100, func() { Match(p, "m.room.member") }); n != 0 {
			t.Errorf("Match(%q) allocates %v times", p, n)
		}
	}
}
